import type { ServiceInstance } from "../registry/registry.js";

export type LoadBalancing = "round_robin" | "least_pending";

/**
 * Picks an instance from a candidate list: round robin per service, or the fewest calls in
 * flight with ties broken by the same rotation.
 */
export class Balancer {
  private readonly cursors = new Map<string, number>();
  private readonly pending = new Map<string, number>();

  pick(service: string, candidates: readonly ServiceInstance[], strategy: LoadBalancing): ServiceInstance {
    const cursor = this.cursors.get(service) ?? 0;
    this.cursors.set(service, cursor + 1);
    const n = candidates.length;
    if (strategy === "round_robin" || n === 1) return candidates[cursor % n]!;
    let best = candidates[cursor % n]!;
    let bestPending = this.pendingOf(best.id);
    for (let k = 1; k < n; k++) {
      const c = candidates[(cursor + k) % n]!;
      const p = this.pendingOf(c.id);
      if (p < bestPending) {
        best = c;
        bestPending = p;
      }
    }
    return best;
  }

  pendingOf(instanceId: string): number {
    return this.pending.get(instanceId) ?? 0;
  }

  begin(instanceId: string): void {
    this.pending.set(instanceId, this.pendingOf(instanceId) + 1);
  }

  end(instanceId: string): void {
    const p = this.pendingOf(instanceId) - 1;
    if (p <= 0) this.pending.delete(instanceId);
    else this.pending.set(instanceId, p);
  }
}
