import { Etcd3 } from "etcd3";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { Client } from "../../src/client/client.js";
import { Coordinator } from "../../src/coordinator/coordinator.js";
import type { CallOutcome } from "../../src/coordinator/types.js";
import { AgentctlError } from "../../src/errors.js";
import { type RegistrySource, watchEtcdRegistry } from "../../src/registry/etcd-source.js";
import { Registry } from "../../src/registry/registry.js";
import { type AgentServer, startAgentServer } from "../../src/server/index.js";
import { describeEtcd, type EtcdServer, startEtcd, waitFor } from "../helpers/etcd.js";

describeEtcd("etcd registry source (real etcd)", () => {
  let etcd: EtcdServer;
  let kv: Etcd3;
  let n = 0;
  const cleanups: Array<() => unknown> = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    kv = new Etcd3({ hosts: etcd.clientUrl });
  });

  afterAll(async () => {
    kv?.close();
    await etcd?.stop();
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A fresh prefix per test, so that tests never see each other's keys. */
  function prefix(): string {
    return `/agentctl-test/${process.pid}-${++n}`;
  }

  async function server(): Promise<AgentServer> {
    const s = await startAgentServer({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => s.close());
    return s;
  }

  function put(p: string, service: string, id: string, value: unknown): Promise<unknown> {
    return kv
      .put(`${p}/${service}/${id}`)
      .value(typeof value === "string" ? value : JSON.stringify(value))
      .exec();
  }

  async function setup(p: string, warnings: string[] = []) {
    const registry = new Registry({ heartbeatTimeout: 0 });
    const client = new Client({ timeout: 10_000 });
    const coordinator = new Coordinator(registry, client, { retries: 2 });
    let source: RegistrySource | undefined;
    cleanups.push(async () => {
      await source?.close();
      coordinator.close();
      await client.close();
      registry.close();
    });
    source = await watchEtcdRegistry(`${etcd.url}${p}`, registry, {
      onWarning: (m) => warnings.push(m),
      dialTimeoutMs: 3000,
    });
    const call = (agent = "echo", input: Record<string, unknown> = { task: "hi" }) =>
      coordinator.call({ serviceName: "svc", agentName: agent, input });
    return { registry, coordinator, call, source };
  }

  function ids(registry: Registry, service = "svc"): string[] {
    return registry.hasService(service)
      ? registry
          .getAllInstances(service)
          .map((i) => i.id)
          .sort()
      : [];
  }

  it("discovers the instances under the prefix and calls them", async () => {
    const p = prefix();
    const [a, b] = [await server(), await server()];
    await put(p, "svc", "a", { id: "a", service: "svc", endpoint: a.url, metadata: { zone: "x" } });
    await put(p, "svc", "b", { id: "b", service: "svc", endpoint: b.url, agents: ["echo"] });
    await put(p, "other", "c", { id: "c", service: "other", endpoint: a.url });
    // A key just outside the prefix directory is not ours.
    await kv.put(`${p}-elsewhere/svc/z`).value(JSON.stringify({ id: "z", service: "svc", endpoint: a.url }));

    const { registry, call } = await setup(p);
    expect(ids(registry)).toEqual(["a", "b"]);
    expect(ids(registry, "other")).toEqual(["c"]);
    expect(registry.getInstance("a").metadata).toEqual({ zone: "x" });
    expect(registry.getInstance("b").agents).toEqual(["echo"]);

    const outcomes = await Promise.all(Array.from({ length: 6 }, () => call()));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(a.agentRuns).toBeGreaterThan(0);
    expect(b.agentRuns).toBeGreaterThan(0);
  });

  it("rejects with code connection when etcd cannot be reached", async () => {
    const registry = new Registry({ heartbeatTimeout: 0 });
    cleanups.push(() => registry.close());
    // A loopback port that nothing listens on any more.
    const closed = await startAgentServer({ port: 0 });
    const port = closed.port;
    await closed.close();
    const started = Date.now();
    const error = await watchEtcdRegistry(`etcd://127.0.0.1:${port}`, registry, {
      dialTimeoutMs: 1000,
      onWarning: () => {},
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AgentctlError);
    expect((error as AgentctlError).code).toBe("connection");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("sends calls to an instance whose key is added mid-run", async () => {
    const p = prefix();
    const [a, b] = [await server(), await server()];
    await put(p, "svc", "a", { id: "a", service: "svc", endpoint: a.url });
    const { registry, call } = await setup(p);
    expect(ids(registry)).toEqual(["a"]);

    const outcomes: CallOutcome[] = [];
    let added = false;
    const run = (async () => {
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        outcomes.push(await call());
        if (outcomes.length === 5 && !added) {
          added = true;
          await put(p, "svc", "b", { id: "b", service: "svc", endpoint: b.url });
        }
        if (outcomes.some((o) => o.ok && o.instance === "b") && outcomes.length >= 10) return;
      }
    })();
    await run;
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(outcomes.slice(0, 5).every((o) => o.instance === "a")).toBe(true);
    expect(outcomes.some((o) => o.instance === "b")).toBe(true);
    expect(b.agentRuns).toBeGreaterThan(0);
  });

  it("gives no new calls to an instance whose key is deleted, and lets its call in flight finish", async () => {
    const p = prefix();
    const [a, b] = [await server(), await server()];
    await put(p, "svc", "a", { id: "a", service: "svc", endpoint: a.url, agents: ["echo"] });
    await put(p, "svc", "b", { id: "b", service: "svc", endpoint: b.url, agents: ["echo", "sleep"] });
    const { registry, call } = await setup(p);
    expect(ids(registry)).toEqual(["a", "b"]);

    // Only b serves `sleep`: this call is in flight on b while b's key is deleted.
    const inFlight = call("sleep", { task: "slow", context: { ms: 1500 } });
    await waitFor(() => b.agentRuns === 1, 5000, "the sleep call reaching b");
    await kv.delete().key(`${p}/svc/b`);
    await waitFor(() => !ids(registry).includes("b"), 5000, "b leaving the registry");

    const after = await Promise.all(Array.from({ length: 8 }, () => call()));
    expect(after.every((o) => o.ok && o.instance === "a")).toBe(true);
    expect(b.agentRuns).toBe(1);

    const slow = await inFlight;
    expect(slow.ok).toBe(true);
    expect(slow.instance).toBe("b");
    // Nothing serves `sleep` any more.
    const none = await call("sleep", { task: "x", context: { ms: 1 } });
    expect(none.ok).toBe(false);
    if (!none.ok) expect(none.error.code).toBe("no_instances");
    expect(b.agentRuns).toBe(1);
  });

  it("keeps the last known registry while etcd is down, and follows it again after a restart", async () => {
    const p = prefix();
    const [a, b] = [await server(), await server()];
    await put(p, "svc", "a", { id: "a", service: "svc", endpoint: a.url });
    const warnings: string[] = [];
    const { registry, call } = await setup(p, warnings);

    const outcomes: CallOutcome[] = [];
    let done = false;
    const run = (async () => {
      while (!done) outcomes.push(await call());
    })();
    try {
      await waitFor(() => outcomes.length >= 5, 5000, "calls before the outage");
      await etcd.restart(async () => {
        await waitFor(() => warnings.some((w) => w.includes("lost etcd")), 10_000, "the lost-etcd warning");
        // The run goes on against the last known instances while etcd is away, for an outage long
        // enough that the client retries its connection several times.
        const before = outcomes.length;
        const downAt = Date.now();
        await waitFor(
          () => outcomes.length >= before + 20 && Date.now() - downAt >= 3000,
          15_000,
          "calls during the outage",
        );
        expect(ids(registry)).toEqual(["a"]);
      });
      await waitFor(() => warnings.some((w) => w.includes("etcd reconnected")), 20_000, "reconnection");
      // The watch works again: a key added now is followed.
      await put(p, "svc", "b", { id: "b", service: "svc", endpoint: b.url });
      await waitFor(() => outcomes.some((o) => o.instance === "b"), 10_000, "calls to b after the restart");
    } finally {
      done = true;
      await run;
    }
    expect(outcomes.length).toBeGreaterThan(25);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(warnings.filter((w) => w.includes("lost etcd"))).toHaveLength(1);
    expect(warnings.find((w) => w.includes("lost etcd"))).toMatch(
      /^warning: lost etcd at etcd:\/\/127\.0\.0\.1:\d+\/.*; keeping the last known registry while reconnecting$/,
    );
  });

  it("skips malformed values with a warning and never crashes", async () => {
    const p = prefix();
    const a = await server();
    await put(p, "svc", "a", { id: "a", service: "svc", endpoint: a.url });
    await put(p, "svc", "bad-json", "{not json");
    await put(p, "svc", "bad-endpoint", { id: "bad-endpoint", service: "svc", endpoint: 42 });
    await put(p, "svc", "wrong-service", { id: "wrong-service", service: "nope", endpoint: a.url });
    await kv.put(`${p}/svc`).value(JSON.stringify({ id: "x", service: "svc", endpoint: a.url }));
    const warnings: string[] = [];
    const { registry, call } = await setup(p, warnings);
    expect(ids(registry)).toEqual(["a"]);
    for (const key of ["bad-json", "bad-endpoint", "wrong-service"]) {
      expect(warnings.some((w) => w.startsWith(`warning: skipping etcd key ${p}/svc/${key}:`))).toBe(true);
    }
    expect(warnings.some((w) => w.startsWith(`warning: skipping etcd key ${p}/svc:`))).toBe(true);

    // Mid-run: a bad value arriving is skipped; a good key turning bad leaves the registry;
    // a duplicate id under another key is refused.
    const count = warnings.length;
    await put(p, "svc", "later", "[]");
    await waitFor(() => warnings.length > count, 5000, "a warning for the bad value");
    await put(p, "svc", "dup", { service: "svc", id: "dup", endpoint: a.url });
    await put(p, "svc2", "a", { service: "svc2", id: "a", endpoint: a.url });
    await waitFor(() => ids(registry).includes("dup"), 5000, "dup registered");
    await waitFor(() => warnings.some((w) => w.includes("already used by")), 5000, "duplicate id refused");
    expect(registry.getInstance("a").serviceName).toBe("svc");

    await put(p, "svc", "dup", { service: "svc", id: "dup", endpoint: "not a url" });
    await waitFor(() => !ids(registry).includes("dup"), 5000, "dup leaving after turning bad");
    expect((await call()).ok).toBe(true);
    // A value fixed later is picked up again.
    await put(p, "svc", "bad-json", { endpoint: a.url });
    await waitFor(() => ids(registry).includes("bad-json"), 5000, "a fixed value registered");
  });

  it("close() stops following etcd and leaves the registry as it was", async () => {
    const p = prefix();
    const a = await server();
    await put(p, "svc", "a", { id: "a", service: "svc", endpoint: a.url });
    const { registry, source } = await setup(p);
    await source.close();
    await source.close();
    await put(p, "svc", "b", { id: "b", service: "svc", endpoint: a.url });
    await kv.delete().key(`${p}/svc/a`);
    // Give a live watch ample time to have delivered both events (it would within milliseconds),
    // then check none arrived: proving an absence needs a bounded wait.
    const marker = `${p}/svc/marker`;
    const probe = new Registry({ heartbeatTimeout: 0 });
    const other = await watchEtcdRegistry(`${etcd.url}${p}`, probe, { onWarning: () => {} });
    await put(p, "svc", "marker", { endpoint: a.url });
    await waitFor(() => probe.hasService("svc") && ids(probe).includes("marker"), 5000, marker);
    await other.close();
    probe.close();
    expect(ids(registry)).toEqual(["a"]);
  });
});
