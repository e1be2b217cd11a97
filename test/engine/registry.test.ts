/** The in-memory registry (goagent's Registry; SPEC §10). */
import { describe, expect, it } from "vitest";
import { AgentctlError, Registry, type RegistryEvent } from "../../src/index.js";
import { useResources } from "./util.js";

const r = useResources();

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AgentctlError);
    return (err as AgentctlError).code;
  }
  return undefined;
}

function three(registry: Registry, service = "test-service") {
  for (let i = 1; i <= 3; i++) {
    registry.register({ id: `instance-${i}`, serviceName: service, endpoint: `http://127.0.0.1:808${i}` });
  }
}

/** A registry's private heartbeat checker, to see whether it holds the process. */
function checker(registry: Registry): NodeJS.Timeout | undefined {
  return (registry as unknown as { checker: NodeJS.Timeout | undefined }).checker;
}

describe("register", () => {
  // peer: TestRegistry_Register_Success
  it("registers a healthy instance with its times", () => {
    const c = clock();
    const registry = r.registry({ heartbeatTimeout: 0, now: c.now });
    const instance = registry.register({
      id: "instance-1",
      serviceName: "test-service",
      endpoint: "http://localhost:8080",
      agents: ["Agent1", "Agent2"],
    });
    expect(instance).toMatchObject({
      id: "instance-1",
      serviceName: "test-service",
      endpoint: "http://localhost:8080",
      agents: ["Agent1", "Agent2"],
      healthy: true,
      outOfService: false,
      registeredAt: c.t,
      lastSeen: c.t,
    });
    expect(registry.getInstance("instance-1")).toBe(instance);
  });

  // peer: TestRegistry_Register_MissingID, TestRegistry_Register_MissingServiceName, TestRegistry_Register_MissingEndpoint
  it.each([
    [{ serviceName: "s", endpoint: "http://h" }],
    [{ id: "", serviceName: "s", endpoint: "http://h" }],
    [{ id: "i", endpoint: "http://h" }],
    [{ id: "i", serviceName: "", endpoint: "http://h" }],
    [{ id: "i", serviceName: "s" }],
    [{ id: "i", serviceName: "s", endpoint: "" }],
    [{ id: 7, serviceName: "s", endpoint: "http://h" }],
  ])("rejects an incomplete instance %j with invalid", (spec) => {
    const registry = r.registry();
    expect(code(() => registry.register(spec as never))).toBe("invalid");
    expect(code(() => registry.register(undefined as never))).toBe("invalid");
    expect(registry.listServices()).toEqual([]);
  });

  // peer: TestRegistry_Register_MultipleInstances
  it("several instances of one service", () => {
    const registry = r.registry();
    three(registry);
    expect(registry.getHealthyInstances("test-service").map((i) => i.id)).toEqual([
      "instance-1",
      "instance-2",
      "instance-3",
    ]);
  });

  // peer: TestRegistry_Metadata
  it("keeps metadata, copied", () => {
    const registry = r.registry();
    const metadata = { version: "1.0.0", region: "us-west", zone: "zone-a" };
    registry.register({ id: "i", serviceName: "s", endpoint: "http://h", metadata });
    metadata.version = "2";
    expect(registry.getInstance("i").metadata).toEqual({
      version: "1.0.0",
      region: "us-west",
      zone: "zone-a",
    });
  });

  it("a re-registration replaces the instance but keeps its health and registration time", () => {
    const c = clock();
    const registry = r.registry({ heartbeatTimeout: 0, now: c.now });
    registry.register({ id: "i", serviceName: "s", endpoint: "http://a" });
    registry.markUnhealthy("i");
    c.t += 500;
    const again = registry.register({ id: "i", serviceName: "s", endpoint: "http://b" });
    expect(again).toMatchObject({
      endpoint: "http://b",
      healthy: false,
      registeredAt: c.t - 500,
      lastSeen: c.t,
    });
    expect(registry.getAllInstances("s")).toHaveLength(1);
  });

  it("a re-registration under another service moves it", () => {
    const registry = r.registry();
    const old = registry.register({ id: "i", serviceName: "s1", endpoint: "http://a" });
    registry.register({ id: "i", serviceName: "s2", endpoint: "http://a" });
    expect(registry.listServices()).toEqual(["s2"]);
    expect(old.outOfService).toBe(true);
    expect(code(() => registry.getAllInstances("s1"))).toBe("unknown_service");
  });
});

describe("deregister", () => {
  // peer: TestRegistry_Deregister_Success
  it("removes the instance; an unknown id is invalid afterwards", () => {
    const registry = r.registry();
    const instance = registry.register({ id: "instance-1", serviceName: "s", endpoint: "http://h" });
    registry.deregister("instance-1");
    expect(code(() => registry.getInstance("instance-1"))).toBe("invalid");
    // Calls still holding the object see it out of service.
    expect(instance.outOfService).toBe(true);
    // The service had no other instance: it is gone.
    expect(registry.listServices()).toEqual([]);
    expect(code(() => registry.getAllInstances("s"))).toBe("unknown_service");
  });

  // peer: TestRegistry_Deregister_NotFound
  it("an unknown id is invalid", () => {
    expect(code(() => r.registry().deregister("non-existent"))).toBe("invalid");
  });

  // peer: TestRegistry_Deregister_RemovesFromService
  it("removes it from its service only", () => {
    const registry = r.registry();
    three(registry);
    registry.deregister("instance-2");
    const ids = registry.getHealthyInstances("test-service").map((i) => i.id);
    expect(ids).toEqual(["instance-1", "instance-3"]);
  });
});

describe("heartbeat", () => {
  // peer: TestRegistry_Heartbeat_Success, TestRegistry_HealthCheckContinuous
  it("updates lastSeen each time", () => {
    const c = clock();
    const registry = r.registry({ heartbeatTimeout: 0, now: c.now });
    registry.register({ id: "instance-1", serviceName: "s", endpoint: "http://h" });
    const first = registry.getInstance("instance-1").lastSeen;
    c.t += 100;
    registry.heartbeat("instance-1");
    const second = registry.getInstance("instance-1").lastSeen;
    c.t += 100;
    registry.heartbeat("instance-1");
    expect(second).toBeGreaterThan(first);
    expect(registry.getInstance("instance-1").lastSeen).toBeGreaterThan(second);
    expect(registry.getInstance("instance-1").healthy).toBe(true);
  });

  // peer: TestRegistry_Heartbeat_NotFound
  it("an unknown id is invalid", () => {
    expect(code(() => r.registry().heartbeat("non-existent"))).toBe("invalid");
  });

  it("a heartbeat makes an unhealthy instance healthy again", () => {
    const registry = r.registry();
    registry.register({ id: "i", serviceName: "s", endpoint: "http://h" });
    registry.markUnhealthy("i");
    registry.heartbeat("i");
    expect(registry.getInstance("i").healthy).toBe(true);
  });

  // peer: TestRegistry_PerformHealthCheck_MarkUnhealthy
  it("an instance silent for longer than heartbeatTimeout is marked unhealthy (injected clock)", async () => {
    const c = clock();
    const registry = r.registry({ heartbeatTimeout: 40, now: c.now });
    registry.register({ id: "silent", serviceName: "s", endpoint: "http://a" });
    registry.register({ id: "alive", serviceName: "s", endpoint: "http://b" });
    const events: RegistryEvent[] = [];
    const marked = new Promise<void>((resolve) =>
      registry.onChange((e) => {
        events.push(e);
        if (e.type === "health") resolve();
      }),
    );
    c.t += 41;
    registry.heartbeat("alive");
    await marked;
    expect(registry.getInstance("silent").healthy).toBe(false);
    expect(registry.getInstance("alive").healthy).toBe(true);
    expect(events.map((e) => [e.type, e.instance.id])).toEqual([["health", "silent"]]);
    expect(registry.getStatistics().unhealthyInstances).toBe(1);
  });

  it("the heartbeat timeout on the real clock, with wide margins", async () => {
    const registry = r.registry({ heartbeatTimeout: 300 });
    registry.register({ id: "silent", serviceName: "s", endpoint: "http://a" });
    registry.register({ id: "alive", serviceName: "s", endpoint: "http://b" });
    const beat = setInterval(() => registry.heartbeat("alive"), 10);
    r.defer(() => clearInterval(beat));
    const started = performance.now();
    await new Promise<void>((resolve) =>
      registry.onChange((e) => {
        if (e.type === "health" && e.instance.id === "silent") resolve();
      }),
    );
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
    expect(registry.getInstance("alive").healthy).toBe(true);
  });

  it("the checker never keeps the process alive, stops on close(), and is off with 0", () => {
    const registry = new Registry({ heartbeatTimeout: 1000 });
    r.defer(() => registry.close());
    const timer = checker(registry);
    expect(timer).toBeDefined();
    expect(timer!.hasRef()).toBe(false);
    registry.close();
    expect(checker(registry)).toBeUndefined();
    registry.close(); // idempotent
    expect(checker(new Registry({ heartbeatTimeout: 0 }))).toBeUndefined();
    const byDefault = new Registry();
    r.defer(() => byDefault.close());
    expect(byDefault.heartbeatTimeout).toBe(30_000);
    expect(checker(byDefault)!.hasRef()).toBe(false);
    byDefault.close();
  });
});

describe("reads", () => {
  // peer: TestRegistry_GetInstance_Success, TestRegistry_GetInstance_NotFound
  it("getInstance", () => {
    const registry = r.registry();
    registry.register({ id: "instance-1", serviceName: "test-service", endpoint: "http://h", agents: ["A"] });
    expect(registry.getInstance("instance-1")).toMatchObject({
      id: "instance-1",
      serviceName: "test-service",
    });
    expect(code(() => registry.getInstance("non-existent"))).toBe("invalid");
  });

  // peer: TestRegistry_GetHealthyInstances_Success, TestRegistry_GetHealthyInstances_FilterUnhealthy,
  // TestRegistry_GetHealthyInstances_ServiceNotFound
  it("getHealthyInstances filters the unhealthy; an unknown service is unknown_service", () => {
    const registry = r.registry();
    three(registry);
    expect(registry.getHealthyInstances("test-service").every((i) => i.healthy)).toBe(true);
    registry.markUnhealthy("instance-2");
    expect(registry.getHealthyInstances("test-service").map((i) => i.id)).toEqual([
      "instance-1",
      "instance-3",
    ]);
    expect(code(() => registry.getHealthyInstances("non-existent-service"))).toBe("unknown_service");
  });

  it("getHealthyInstances is empty (not an error) when every instance is unhealthy", () => {
    const registry = r.registry();
    three(registry);
    for (let i = 1; i <= 3; i++) registry.markUnhealthy(`instance-${i}`);
    expect(registry.getHealthyInstances("test-service")).toEqual([]);
  });

  // peer: TestRegistry_GetAllInstances_Success, TestRegistry_GetAllInstances_IncludesUnhealthy,
  // TestRegistry_GetAllInstances_ServiceNotFound
  it("getAllInstances includes the unhealthy", () => {
    const registry = r.registry();
    three(registry);
    registry.markUnhealthy("instance-2");
    expect(registry.getAllInstances("test-service")).toHaveLength(3);
    expect(code(() => registry.getAllInstances("non-existent-service"))).toBe("unknown_service");
  });

  // peer: TestRegistry_ListServices_Success, TestRegistry_ListServices_Empty
  it("listServices", () => {
    const registry = r.registry();
    expect(registry.listServices()).toEqual([]);
    for (let i = 1; i <= 3; i++) {
      registry.register({ id: `instance-${i}`, serviceName: `service-${i}`, endpoint: "http://h" });
    }
    expect(registry.listServices().sort()).toEqual(["service-1", "service-2", "service-3"]);
  });
});

describe("health marks", () => {
  // peer: TestRegistry_MarkHealthy_Success, TestRegistry_MarkUnhealthy_Success
  it("markUnhealthy / markHealthy", () => {
    const registry = r.registry();
    registry.register({ id: "instance-1", serviceName: "s", endpoint: "http://h" });
    registry.markUnhealthy("instance-1");
    expect(registry.getInstance("instance-1").healthy).toBe(false);
    registry.markHealthy("instance-1");
    expect(registry.getInstance("instance-1").healthy).toBe(true);
  });

  // peer: TestRegistry_MarkHealthy_NonExistent, TestRegistry_MarkUnhealthy_NonExistent
  // (SPEC: an unknown instance id is `invalid`; goagent ignores it)
  it("an unknown id is invalid", () => {
    const registry = r.registry();
    expect(code(() => registry.markHealthy("non-existent"))).toBe("invalid");
    expect(code(() => registry.markUnhealthy("non-existent"))).toBe("invalid");
  });

  it("onChange reports registrations, health changes (once per change) and removals", () => {
    const registry = r.registry();
    const events: string[] = [];
    const off = registry.onChange((e) => events.push(`${e.type}:${e.instance.id}:${e.instance.healthy}`));
    registry.register({ id: "i", serviceName: "s", endpoint: "http://h" });
    registry.markUnhealthy("i");
    registry.markUnhealthy("i");
    registry.markHealthy("i");
    registry.deregister("i");
    off();
    registry.register({ id: "j", serviceName: "s", endpoint: "http://h" });
    expect(events).toEqual(["registered:i:true", "health:i:false", "health:i:true", "deregistered:i:true"]);
  });
});

describe("statistics", () => {
  // peer: TestRegistry_GetStatistics_Success, TestRegistry_GetStatistics_WithUnhealthy
  it("counts instances and health per service", () => {
    const registry = r.registry();
    three(registry);
    expect(registry.getStatistics()).toEqual({
      totalServices: 1,
      totalInstances: 3,
      healthyInstances: 3,
      unhealthyInstances: 0,
      services: { "test-service": { total: 3, healthy: 3 } },
    });
    registry.markUnhealthy("instance-2");
    expect(registry.getStatistics()).toMatchObject({
      totalInstances: 3,
      healthyInstances: 2,
      unhealthyInstances: 1,
      services: { "test-service": { total: 3, healthy: 2 } },
    });
  });

  // peer: TestRegistry_GetStatistics_MultipleServices
  it("several services", () => {
    const registry = r.registry();
    for (const service of ["service-1", "service-2", "service-3"]) {
      for (let i = 1; i <= 2; i++) {
        registry.register({ id: `${service}-${i}`, serviceName: service, endpoint: `http://h:808${i}` });
      }
    }
    expect(registry.getStatistics()).toMatchObject({
      totalServices: 3,
      totalInstances: 6,
      healthyInstances: 6,
    });
  });

  // peer: TestRegistry_ConcurrentOperations (one thread here: interleaved async operations)
  it("interleaved registrations and reads", async () => {
    const registry = r.registry();
    await Promise.all(
      Array.from({ length: 10 }, async (_, g) => {
        for (let j = 0; j < 5; j++) {
          await Promise.resolve();
          registry.register({ id: `instance-${g}-${j}`, serviceName: "test-service", endpoint: "http://h" });
          registry.getHealthyInstances("test-service");
          registry.listServices();
          registry.getStatistics();
        }
      }),
    );
    expect(registry.getStatistics().totalInstances).toBe(50);
  });
});

describe("close", () => {
  it("stops listeners", () => {
    const registry = new Registry({ heartbeatTimeout: 0 });
    const events: string[] = [];
    registry.onChange((e) => events.push(e.type));
    registry.close();
    registry.register({ id: "i", serviceName: "s", endpoint: "http://h" });
    expect(events).toEqual([]);
  });
});
