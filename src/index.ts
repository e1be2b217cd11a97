/** agentctl as a library: the goagent `distributed` API in TypeScript. */

export { DEFAULT_MAX_RESPONSE_BYTES } from "./client/body.js";
export { type AsyncResult, type CallOptions, Client, type ClientOptions } from "./client/client.js";
export type { LoadBalancing } from "./coordinator/balancer.js";
export { Coordinator, type CoordinatorOptions } from "./coordinator/coordinator.js";
export { HealthMonitor, type HealthOptions, type ProbeResult } from "./coordinator/health.js";
export type {
  AgentTask,
  CallEvent,
  CallOutcome,
  CallRequest,
  GiveUpReason,
  RunOptions,
  ServicePolicy,
  TaskResult,
} from "./coordinator/types.js";
export { AgentctlError, ERROR_CODES, type ErrorCode, isAgentctlError } from "./errors.js";
export { decodeOutput, encodeInput } from "./protocol/encoding.js";
export type { AgentInput, AgentOptions, AgentOutput, AgentStatus, TokenUsage } from "./protocol/types.js";
export { listEtcdInstances, registerInEtcd, watchEtcdRegistry } from "./registry/etcd.js";
export type {
  EtcdRegistration,
  EtcdRegistrationOptions,
  EtcdRegistrationSpec,
} from "./registry/etcd-registration.js";
export type { EtcdSourceOptions, RegistrySource } from "./registry/etcd-source.js";
export { type EtcdUrl, parseEtcdUrl } from "./registry/etcd-url.js";
export {
  type InstanceSpec,
  Registry,
  type RegistryEvent,
  type RegistryOptions,
  type RegistryStatistics,
  type ServiceInstance,
} from "./registry/registry.js";
export { type BackoffConfig, backoffDelay, parseRetryAfter } from "./resilience/backoff.js";
export {
  CircuitBreaker,
  type CircuitBreakerConfig,
  type CircuitState,
} from "./resilience/circuit-breaker.js";
export { VERSION } from "./version.js";
