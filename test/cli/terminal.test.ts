import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, removeWorkspaces, workspace } from "../helpers/cli.js";

/**
 * The CLI on a real pseudo-terminal (util-linux `script`, in every Debian): the spinner shows
 * live counts on stderr, and a terminal without a width (0 columns, as a pty opened without a
 * size in CI reports) gets no spinner rather than a hang; neither do CI logs nor `TERM=dumb`.
 */

afterAll(removeWorkspaces);

async function onTerminal(columns: number, args: string[], env: Record<string, string | undefined> = {}) {
  const ws = await workspace();
  await ws.writeYaml("p.yaml", {
    name: "tty",
    services: { svc: { instances: [{ endpoint: "embedded" }] } },
    tasks: [
      { id: "quick", service: "svc", agent: "echo", input: { task: "x" } },
      { id: "slow", service: "svc", agent: "sleep", input: { task: "x", context: { ms: 1500 } } },
    ],
  });
  const command = `stty cols ${columns} rows 24 && exec "${process.execPath}" "${BIN}" ${args.join(" ")}`;
  return execa("script", ["-qefc", command, "/dev/null"], {
    cwd: ws.dir,
    stdin: "ignore",
    reject: false,
    timeout: 30_000,
    // The suite itself may run under CI=…, which turns the spinner off on purpose.
    env: { NO_COLOR: "1", CI: undefined, TERM: "xterm", ...env },
  });
}

describe.concurrent("on a terminal", () => {
  it("shows a spinner with live counts while the run goes on", async () => {
    const r = await onTerminal(100, ["run", "p.yaml"]);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toContain("1/2 done, 1 running, 0 failed");
    expect(r.stdout).toContain("2 tasks: 2 succeeded");
  });

  it("a terminal 0 columns wide gets no spinner, and the run ends", async () => {
    const r = await onTerminal(0, ["run", "p.yaml"]);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stdout.slice(-2000)).toBe(0);
    expect(r.stdout).not.toContain("running");
    expect(r.stdout).toContain("2 tasks: 2 succeeded");
  });

  it.each([
    ["CI is set", { CI: "true" }],
    ["TERM is dumb", { TERM: "dumb" }],
  ])("no spinner when %s, not even a starting line", async (_, env) => {
    const r = await onTerminal(100, ["run", "p.yaml"], env);
    expect(r.exitCode, r.stdout.slice(-2000)).toBe(0);
    expect(r.stdout).not.toContain("starting");
    expect(r.stdout).not.toContain("running");
    expect(r.stdout).toContain("2 tasks: 2 succeeded");
  });
});
