// biome-ignore-all lint/suspicious/noExplicitAny: the tests read the CLI's JSON output loosely
import { createServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import {
  type CliProcess,
  parseJsonOutput,
  removeWorkspaces,
  runCli,
  servicesOf,
  startCli,
  workspace,
} from "../helpers/cli.js";

/**
 * `agentctl serve`: the reference agent server as a process. One stdout line once listening,
 * the SPEC §2 protocol, clean exit 0 on SIGTERM/SIGINT.
 */

const running: CliProcess[] = [];

afterAll(async () => {
  for (const p of running) if (!p.exited) p.kill("SIGKILL");
  await Promise.all(running.map((p) => p.result));
  await removeWorkspaces();
});

const LISTENING = /^listening on (http:\/\/127\.0\.0\.1:(\d+))\n/;

async function serve(args: string[] = []): Promise<{ cli: CliProcess; url: string; port: number }> {
  const cli = startCli(["serve", "--port", "0", ...args], { timeout: 60_000 });
  running.push(cli);
  const out = await cli.waitForOutput("stdout", LISTENING, 20_000);
  const m = LISTENING.exec(out)!;
  return { cli, url: m[1]!, port: Number(m[2]) };
}

async function json(res: Response): Promise<any> {
  return JSON.parse(await res.text());
}

describe.concurrent("serve", () => {
  it("prints exactly one stdout line, answers the protocol, exits 0 on SIGTERM", async () => {
    const { cli, url, port } = await serve();
    expect(port).toBeGreaterThan(0);

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    await health.text();

    const list = await fetch(`${url}/api/v1/agents`);
    expect(list.status).toBe(200);
    expect((await json(list)).agents).toEqual(["echo", "upper", "wordcount", "sleep", "fail"]);

    const exec = await fetch(`${url}/api/v1/agents/upper/execute`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ task: "make me loud", timestamp: new Date().toISOString() }),
    });
    expect(exec.status).toBe(200);
    const out = await json(exec);
    expect(out).toMatchObject({ result: "MAKE ME LOUD", status: "success" });
    expect(Number.isInteger(out.latency)).toBe(true);

    const submit = await fetch(`${url}/api/v1/agents/wordcount/execute/async`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ task: "one two three" }),
    });
    expect(submit.status).toBe(202);
    const { task_id } = await json(submit);
    expect(typeof task_id).toBe("string");
    let done: any;
    for (let i = 0; i < 200 && done === undefined; i++) {
      const poll = await fetch(`${url}/api/v1/agents/tasks/${encodeURIComponent(task_id)}`);
      if (poll.status === 200) done = await json(poll);
      else {
        expect(poll.status).toBe(202);
        await poll.text();
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    expect(done).toMatchObject({ result: { words: 3 }, status: "success" });

    const unknown = await fetch(`${url}/api/v1/agents/nobody/execute`, { method: "POST", body: "{}" });
    expect(unknown.status).toBe(404);
    await unknown.text();

    cli.kill("SIGTERM");
    const r = await cli.result;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`listening on ${url}\n`);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it("exits 0 on SIGINT too, and serves a pipeline run by the CLI itself", async () => {
    const { cli, url } = await serve(["--agents", "echo,upper"]);
    const ws = await workspace();
    await ws.writeYaml("p.yaml", {
      name: "against-serve",
      services: servicesOf([url]),
      tasks: [
        { id: "a", service: "svc", agent: "upper", input: { task: "x" } },
        {
          id: "b",
          service: "svc",
          agent: "echo",
          needs: ["a"],
          input: { task: "${{ tasks.a.output.result }}" },
        },
      ],
    });
    const run = await runCli(["run", "p.yaml", "--output", "json"], { cwd: ws.dir });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(parseJsonOutput(run).tasks[1].output.result.task).toBe("X");
    const list = await fetch(`${url}/api/v1/agents`);
    expect((await json(list)).agents).toEqual(["echo", "upper"]);
    cli.kill("SIGINT");
    const r = await cli.result;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split("\n")).toEqual([`listening on ${url}`, ""]);
  });

  it("--latency delays every agent call; --fail-rate 1 answers every call 503", async () => {
    const [slow, failing] = await Promise.all([serve(["--latency", "300ms"]), serve(["--fail-rate", "1"])]);
    const t0 = performance.now();
    const res = await fetch(`${slow.url}/api/v1/agents/echo/execute`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    await res.text();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    const bad = await fetch(`${failing.url}/api/v1/agents/echo/execute`, { method: "POST", body: "{}" });
    expect(bad.status).toBe(503);
    await bad.text();
    const health = await fetch(`${failing.url}/health`);
    expect(health.status).toBe(200);
    await health.text();
    for (const s of [slow, failing]) s.cli.kill("SIGTERM");
    for (const s of [slow, failing]) expect((await s.cli.result).exitCode).toBe(0);
  });

  it("bad flags and a port in use are usage errors (exit 2), nothing on stdout", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const results = await Promise.all([
        runCli(["serve", "--port", String(taken)]),
        runCli(["serve", "--port", "70000"]),
        runCli(["serve", "--port", "0", "--fail-rate", "1.5"]),
        runCli(["serve", "--port", "0", "--latency", "soon"]),
        runCli(["serve", "--port", "0", "--agents", "echo,nonexistent"]),
        runCli(["serve", "--port", "0", "--fail-rate", "0x1"]),
        runCli(["serve", "--port", "0", "--agents", ","]),
        runCli(["serve", "--port", "0", "--host", ""]),
      ]);
      for (const r of results) {
        expect(r.exitCode, r.stderr).toBe(2);
        expect(r.stdout).toBe("");
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      blocker.close();
    }
  });
});
