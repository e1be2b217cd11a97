import type { Client } from "../client/client.js";
import type { Registry, ServiceInstance } from "../registry/registry.js";

export interface HealthOptions {
  /** Timeout of one probe, ms (default 2 s). */
  timeout?: number;
  /** How often unhealthy instances are probed again, ms (default 5 s). */
  interval?: number;
  /** Headers a service's calls carry (e.g. authorization): its probes carry them too. */
  headers?: (service: string) => Record<string, string> | undefined;
}

export interface ProbeResult {
  instance: ServiceInstance;
  healthy: boolean;
  latencyMs: number;
  error?: unknown;
}

/**
 * Active health checks: a probe of every instance before a run, then background re-probes of
 * the unhealthy ones until they answer again. Timers are unref'd so they never hold a process.
 */
export class HealthMonitor {
  private readonly timeout: number;
  private readonly interval: number;
  private readonly headers: HealthOptions["headers"];
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  /** Aborts the background probes in flight when stopped: none outlives the monitor. */
  private background = new AbortController();

  constructor(
    private readonly registry: Registry,
    private readonly client: Client,
    options: HealthOptions = {},
  ) {
    this.timeout = options.timeout ?? 2000;
    this.interval = options.interval ?? 5000;
    this.headers = options.headers;
  }

  /** One probe; a cancelled one (by `signal`) says nothing of the instance's health. */
  async probe(instance: ServiceInstance, signal?: AbortSignal): Promise<ProbeResult> {
    const started = performance.now();
    try {
      await this.client.ping(instance.endpoint, {
        timeout: this.timeout,
        headers: this.headers?.(instance.serviceName),
        signal,
      });
      if (!instance.outOfService) this.registry.markHealthy(instance.id);
      return { instance, healthy: true, latencyMs: performance.now() - started };
    } catch (error) {
      if (!instance.outOfService && !signal?.aborted) this.registry.markUnhealthy(instance.id);
      return { instance, healthy: false, latencyMs: performance.now() - started, error };
    }
  }

  /** Probes every instance of the given services (default all) concurrently. */
  async probeAll(
    services: readonly string[] = this.registry.listServices(),
    signal?: AbortSignal,
  ): Promise<ProbeResult[]> {
    const instances = services
      .filter((s) => this.registry.hasService(s))
      .flatMap((s) => this.registry.getAllInstances(s));
    const results = await Promise.all(instances.map((i) => this.probe(i, signal)));
    if (!signal?.aborted) this.start();
    return results;
  }

  /** Starts the background re-probing of unhealthy instances (idempotent). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.reprobe(), this.interval).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.background.abort();
    this.background = new AbortController();
  }

  private async reprobe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const unhealthy = this.registry
        .listServices()
        .flatMap((s) => this.registry.getAllInstances(s))
        .filter((i) => !i.healthy);
      await Promise.all(unhealthy.map((i) => this.probe(i, this.background.signal)));
    } finally {
      this.probing = false;
    }
  }
}
