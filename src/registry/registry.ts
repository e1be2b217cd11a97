import { AgentctlError } from "../errors.js";

export interface InstanceSpec {
  id: string;
  serviceName: string;
  endpoint: string;
  /** Agents this instance serves; absent = any agent. */
  agents?: string[];
  metadata?: Record<string, unknown>;
}

export interface ServiceInstance extends InstanceSpec {
  healthy: boolean;
  /** Taken out of rotation by its source (e.g. deleted from etcd while calls were in flight). */
  outOfService: boolean;
  registeredAt: number;
  lastSeen: number;
}

export interface RegistryOptions {
  /**
   * Ms without a heartbeat after which an instance is marked unhealthy (default 30 s; 0 turns it
   * off, as for instances read from a file, which never heartbeat).
   */
  heartbeatTimeout?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface RegistryStatistics {
  totalServices: number;
  totalInstances: number;
  healthyInstances: number;
  unhealthyInstances: number;
  services: Record<string, { total: number; healthy: number }>;
}

export type RegistryEvent =
  | { type: "registered"; instance: ServiceInstance }
  | { type: "deregistered"; instance: ServiceInstance }
  | { type: "health"; instance: ServiceInstance };

/**
 * The in-memory registry of service instances (goagent's Registry). Sources — a services file,
 * etcd — feed it; the coordinator reads it on every call, so changes apply at once.
 */
export class Registry {
  readonly heartbeatTimeout: number;
  private readonly now: () => number;
  private readonly instances = new Map<string, ServiceInstance>();
  private readonly byService = new Map<string, Map<string, ServiceInstance>>();
  private readonly listeners = new Set<(e: RegistryEvent) => void>();
  private checker: NodeJS.Timeout | undefined;

  constructor(options: RegistryOptions = {}) {
    this.heartbeatTimeout = options.heartbeatTimeout ?? 30_000;
    this.now = options.now ?? Date.now;
    if (this.heartbeatTimeout > 0) {
      const every = Math.max(10, Math.floor(this.heartbeatTimeout / 2));
      // unref: a registry must never keep the process alive on its own.
      this.checker = setInterval(() => this.expireSilent(), every).unref();
    }
  }

  /** Adds or replaces an instance; a re-registration keeps its health and breaker history. */
  register(spec: InstanceSpec): ServiceInstance {
    for (const key of ["id", "serviceName", "endpoint"] as const) {
      if (typeof spec?.[key] !== "string" || spec[key] === "") {
        throw new AgentctlError("invalid", `instance needs a non-empty ${key}`);
      }
    }
    const previous = this.instances.get(spec.id);
    if (previous && previous.serviceName !== spec.serviceName) this.remove(previous);
    const t = this.now();
    const instance: ServiceInstance = {
      id: spec.id,
      serviceName: spec.serviceName,
      endpoint: spec.endpoint,
      ...(spec.agents ? { agents: [...spec.agents] } : {}),
      metadata: { ...spec.metadata },
      healthy: previous?.healthy ?? true,
      outOfService: false,
      registeredAt: previous?.registeredAt ?? t,
      lastSeen: t,
    };
    this.instances.set(instance.id, instance);
    let service = this.byService.get(instance.serviceName);
    if (!service) {
      service = new Map();
      this.byService.set(instance.serviceName, service);
    }
    service.set(instance.id, instance);
    this.emit({ type: "registered", instance });
    return instance;
  }

  deregister(id: string): void {
    this.remove(this.require(id));
  }

  heartbeat(id: string): void {
    const instance = this.require(id);
    instance.lastSeen = this.now();
    if (!instance.healthy) this.setHealth(instance, true);
  }

  markHealthy(id: string): void {
    this.setHealth(this.require(id), true);
  }

  markUnhealthy(id: string): void {
    this.setHealth(this.require(id), false);
  }

  getInstance(id: string): ServiceInstance {
    return this.require(id);
  }

  hasService(service: string): boolean {
    return (this.byService.get(service)?.size ?? 0) > 0;
  }

  getAllInstances(service: string): ServiceInstance[] {
    const instances = this.byService.get(service);
    if (!instances || instances.size === 0) {
      throw new AgentctlError("unknown_service", `service ${JSON.stringify(service)} is not in the registry`);
    }
    return [...instances.values()];
  }

  getHealthyInstances(service: string): ServiceInstance[] {
    return this.getAllInstances(service).filter((i) => i.healthy && !i.outOfService);
  }

  listServices(): string[] {
    return [...this.byService.entries()].filter(([, m]) => m.size > 0).map(([name]) => name);
  }

  getStatistics(): RegistryStatistics {
    const services: RegistryStatistics["services"] = {};
    let healthy = 0;
    for (const [name, instances] of this.byService) {
      if (instances.size === 0) continue;
      let h = 0;
      for (const i of instances.values()) if (i.healthy) h++;
      services[name] = { total: instances.size, healthy: h };
      healthy += h;
    }
    return {
      totalServices: Object.keys(services).length,
      totalInstances: this.instances.size,
      healthyInstances: healthy,
      unhealthyInstances: this.instances.size - healthy,
      services,
    };
  }

  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: (e: RegistryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.checker) clearInterval(this.checker);
    this.checker = undefined;
    this.listeners.clear();
  }

  private require(id: string): ServiceInstance {
    const instance = this.instances.get(id);
    if (!instance) throw new AgentctlError("invalid", `no instance with id ${JSON.stringify(id)}`);
    return instance;
  }

  private remove(instance: ServiceInstance): void {
    this.instances.delete(instance.id);
    this.byService.get(instance.serviceName)?.delete(instance.id);
    // Calls already holding this object see it out of service and pick no new attempt on it.
    instance.outOfService = true;
    this.emit({ type: "deregistered", instance });
  }

  private setHealth(instance: ServiceInstance, healthy: boolean): void {
    if (instance.healthy === healthy) return;
    instance.healthy = healthy;
    this.emit({ type: "health", instance });
  }

  private expireSilent(): void {
    const cutoff = this.now() - this.heartbeatTimeout;
    for (const instance of this.instances.values()) {
      if (instance.healthy && instance.lastSeen < cutoff) this.setHealth(instance, false);
    }
  }

  private emit(e: RegistryEvent): void {
    for (const l of this.listeners) l(e);
  }
}
