// biome-ignore-all lint/suspicious/noExplicitAny: the tests read the CLI's JSON output loosely
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { execa } from "execa";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, removeWorkspaces, servicesOf, startCli, type Workspace, workspace } from "../helpers/cli.js";
import { agentOutput, type FakeAgentServer, startFakeAgentServer } from "../helpers/fake-agent-server.js";

/**
 * Interrupting a run: SIGINT/SIGTERM abort the calls in flight (the server sees its sockets
 * close), unfinished tasks are `cancelled`, the result is still printed and the exit code is 130;
 * a second SIGINT ends the process at once.
 */

const servers: FakeAgentServer[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await removeWorkspaces();
});

/** A server of its own per test (its socket counts are the test's), with a hanging agent. */
async function hangingSetup(): Promise<{ fake: FakeAgentServer; ws: Workspace }> {
  const fake = await startFakeAgentServer();
  servers.push(fake);
  fake.route("POST /api/v1/agents/hang/execute", { hang: true });
  const ws = await workspace();
  await ws.writeYaml("pipeline.yaml", {
    name: "interrupted",
    services: servicesOf([fake.url]),
    tasks: [
      { id: "quick", service: "svc", agent: "echo" },
      { id: "stuck_a", service: "svc", agent: "hang" },
      { id: "stuck_b", service: "svc", agent: "hang" },
      { id: "after", service: "svc", agent: "echo", needs: ["stuck_a"] },
    ],
  });
  return { fake, ws };
}

/** Both hanging calls are in, and the quick one is answered. */
function running(fake: FakeAgentServer): Promise<void> {
  return fake.waitFor(
    () =>
      fake.received("POST /api/v1/agents/hang/execute").length === 2 &&
      fake.received("POST /api/v1/agents/echo/execute").length === 1 &&
      fake.inFlight === 2,
    20_000,
    "two hanging calls in flight",
  );
}

describe.concurrent("signals", () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} during hanging calls: exit 130, JSON printed with unfinished tasks cancelled, sockets closed`, async () => {
      const { fake, ws } = await hangingSetup();
      const cli = startCli(["run", "pipeline.yaml", "--output", "json", "--junit", "junit.xml"], {
        cwd: ws.dir,
      });
      await running(fake);
      const sentAt = Date.now();
      cli.kill(signal);
      const r = await cli.result;
      expect(Date.now() - sentAt).toBeLessThan(5000);
      expect(r.exitCode, r.stderr).toBe(130);
      const doc = JSON.parse(r.stdout);
      expect(doc.status).toBe("cancelled");
      const t = Object.fromEntries(doc.tasks.map((x: any) => [x.id, x]));
      expect(t.quick.status).toBe("succeeded");
      for (const id of ["stuck_a", "stuck_b", "after"]) {
        expect(t[id].status, id).toBe("cancelled");
        expect(t[id].error.code, id).toBe("cancelled");
      }
      expect(doc.summary).toEqual({ total: 4, succeeded: 1, failed: 0, skipped: 0, cancelled: 3 });
      expect(r.stderr).toContain(signal);
      // The JUnit report was written too, cancelled tasks as failures.
      expect((await ws.read("junit.xml")).match(/<failure /g)).toHaveLength(3);
      // The server saw the hanging requests end and every connection close.
      await fake.waitForIdle(5000);
      await fake.waitForSockets(0, 5000);
    });
  }

  it("SIGINT mid fan-out: the fan-out is cancelled, saying how many of its items finished", async () => {
    const { fake, ws } = await hangingSetup();
    // Items 0 and 2 answer, 1 and 3 hang.
    fake.route(
      (q) => q.method === "POST" && q.path.endsWith("/fan/execute"),
      (q) =>
        Number((q.json as { task: string }).task) % 2 === 0
          ? { json: agentOutput({ result: 1 }) }
          : { hang: true },
    );
    await ws.writeYaml("pipeline.yaml", {
      name: "fan",
      services: servicesOf([fake.url]),
      tasks: [
        { id: "fan", service: "svc", agent: "fan", for_each: [0, 1, 2, 3], input: { task: "${{ item }}" } },
      ],
    });
    const cli = startCli(["run", "pipeline.yaml", "--output", "json"], { cwd: ws.dir });
    await fake.waitFor(
      () => fake.inFlight === 2 && fake.received("POST /api/v1/agents/fan/execute").length === 4,
      20_000,
      "two items answered, two hanging",
    );
    cli.kill("SIGINT");
    const r = await cli.result;
    expect(r.exitCode, r.stderr).toBe(130);
    const [fan] = JSON.parse(r.stdout).tasks;
    expect(fan).toMatchObject({
      status: "cancelled",
      error: { code: "cancelled", message: "cancelled: 2 of 4 items finished" },
    });
    expect(fan.outputs.map((o: unknown) => o !== null)).toEqual([true, false, true, false]);
  });

  it("SIGINT while the health probes hang: the probe is aborted (no 2 s wait, no unhealthy warning), exit 130, every task cancelled, nothing called", async () => {
    const fake = await startFakeAgentServer();
    servers.push(fake);
    fake.route("GET /health", { hang: true });
    const ws = await workspace();
    await ws.writeYaml("pipeline.yaml", {
      name: "early",
      services: servicesOf([fake.url]),
      tasks: [
        { id: "one", service: "svc", agent: "echo" },
        { id: "two", service: "svc", agent: "echo", needs: ["one"] },
      ],
    });
    const cli = startCli(["run", "pipeline.yaml", "--output", "json"], { cwd: ws.dir });
    await fake.waitFor(() => fake.received("GET /health").length === 1, 20_000, "the health probe");
    // SPEC §8: the run id is printed at the start, not once the probes are over.
    await cli.waitForOutput("stderr", /^run \S+: early, 2 tasks/m);
    cli.kill("SIGINT");
    const r = await cli.result;
    expect(r.exitCode, `signal ${r.signal}; ${r.stderr}`).toBe(130);
    const doc = JSON.parse(r.stdout);
    expect(doc.status).toBe("cancelled");
    expect(doc.tasks.map((t: any) => [t.id, t.status, t.error.code])).toEqual([
      ["one", "cancelled", "cancelled"],
      ["two", "cancelled", "cancelled"],
    ]);
    expect(fake.agentCalls).toHaveLength(0);
    // Waited out, the probe would have timed out and warned that the instance is unhealthy.
    expect(r.stderr).not.toContain("unhealthy");
    await fake.waitForSockets(0, 5000);
  });

  it("a second SIGINT exits at once, even while the first one's result is stuck on a stalled stdout", async () => {
    const { fake, ws } = await hangingSetup();
    // The quick task's output is large (it echoes 2 MB): printing the result fills the stdout
    // pipe, which this test does not read, so the first SIGINT's handling cannot finish.
    await ws.writeYaml("pipeline.yaml", {
      name: "stalled",
      services: servicesOf([fake.url]),
      tasks: [
        { id: "quick", service: "svc", agent: "echo", input: { task: "x".repeat(2 * 1024 * 1024) } },
        { id: "stuck_a", service: "svc", agent: "hang" },
        { id: "stuck_b", service: "svc", agent: "hang" },
      ],
    });
    const cli = startCli(["run", "pipeline.yaml", "--output", "json"], { cwd: ws.dir, holdStdout: true });
    await running(fake);
    cli.kill("SIGINT");
    // The calls in flight are aborted while the process lives on, blocked writing the result.
    await fake.waitForIdle(10_000);
    await cli.waitForOutput("stderr", /SIGINT: cancelling/);
    expect(cli.alive).toBe(true);
    const sentAt = Date.now();
    cli.kill("SIGINT");
    const exit = await Promise.race([
      cli.exit,
      new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), 5000)),
    ]);
    expect(exit).toEqual({ code: 130, signal: null });
    expect(Date.now() - sentAt).toBeLessThan(5000);
    // (What the pipe held is gone: Node drains an exited child's stdio that nobody reads.)
    cli.releaseStdout();
    expect((await cli.result).exitCode).toBe(130);
  });

  it("a signal after the run ended (its result stuck on a stalled stdout) says so, not that it cancels tasks; the result is whole, exit 130", async () => {
    const { fake, ws } = await hangingSetup();
    await ws.writeYaml("pipeline.yaml", {
      name: "over",
      services: servicesOf([fake.url]),
      tasks: [{ id: "quick", service: "svc", agent: "echo", input: { task: "x".repeat(2 * 1024 * 1024) } }],
    });
    const cli = startCli(["run", "pipeline.yaml", "--output", "json", "--verbose"], {
      cwd: ws.dir,
      holdStdout: true,
    });
    // --verbose logs the task's end as the run finishes; the printing that follows fills the
    // pipe this test does not read yet, so the process waits there for the signal.
    await cli.waitForOutput("stderr", /quick: succeeded/);
    cli.kill("SIGINT");
    await cli.waitForOutput(
      "stderr",
      /SIGINT: the run is over, finishing its output \(again to exit at once\)/,
    );
    cli.releaseStdout();
    const r = await cli.result;
    expect(r.exitCode).toBe(130);
    expect(r.stderr).not.toMatch(/cancelling/);
    const report = JSON.parse(r.stdout);
    expect(report.status).toBe("succeeded");
    expect(JSON.stringify(report.tasks[0].output).length).toBeGreaterThan(2 * 1024 * 1024);
  });

  // Without handlers of its own, Node would die by the signal: no exit code for a parent at all,
  // 143 in a shell for SIGTERM. SPEC §6: 130.
  for (const [signal, command] of [
    ["SIGINT", "ping"],
    ["SIGTERM", "ping"],
    ["SIGTERM", "list-agents"],
  ] as const) {
    it(`${signal} during ${command} of an endpoint that never answers: exit code 130`, async () => {
      const silent = createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
      let connected!: () => void;
      const accepted = new Promise<void>((resolve) => {
        connected = resolve;
      });
      silent.on("connection", () => connected());
      try {
        const { port } = silent.address() as AddressInfo;
        const cli = startCli([command, `http://127.0.0.1:${port}`]);
        await accepted;
        cli.kill(signal);
        expect(await cli.exit).toEqual({ code: 130, signal: null });
      } finally {
        silent.close();
      }
    });
  }

  // A command switches handlers while it runs (run: exit at once while loading, then cancel the
  // run). Removing the last listener closed the signal watcher and lost a signal already there.
  it("a signal that arrived just before a command takes signals over reaches the new handler", async () => {
    const signals = pathToFileURL(join(ROOT, "dist", "cli", "signals.js")).href;
    const script = `
      const { onSignals } = await import(${JSON.stringify(signals)});
      onSignals();
      process.kill(process.pid, "SIGTERM"); // pending until this turn of the event loop ends
      onSignals((signal) => { console.log("handled " + signal); process.exit(0); });
      setTimeout(() => { console.log("lost"); process.exit(3); }, 5000);
    `;
    const r = await execa(process.execPath, ["--input-type=module", "-e", script], { reject: false });
    expect(r.stdout).toBe("handled SIGTERM");
    expect(r.exitCode).toBe(0);
  });
});
