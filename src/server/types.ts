export interface AgentServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port, see `AgentServer.port`. */
  port?: number;
  /** Built-in agents to serve (default all); an unknown name is rejected (code `invalid`). */
  agents?: string[];
  /** Milliseconds added to every agent run (execute and async), counted in its `latency`. */
  latencyMs?: number;
  /** Share (0..1) of agent calls (execute and async submit) answered 503 before running the agent. */
  failRate?: number;
  /** Source of randomness for `failRate`; default Math.random. */
  random?: () => number;
  /** How long finished async tasks and idempotent results are kept; default 10 min. */
  asyncTaskTtlMs?: number;
  /** Largest request body accepted (413 above); default 16 MiB. */
  maxBodyBytes?: number;
  /** How long close() lets in-flight requests finish before cutting them off; default 1 s. */
  shutdownGraceMs?: number;
  /** Keep every request in `AgentServer.requests` (unbounded: for tests). */
  recordRequests?: boolean;
}

export interface RecordedRequest {
  method: string;
  /** The request target exactly as received (query included, never decoded). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed AgentInput of an agent call, once it has been read. */
  body?: unknown;
  /** Date.now() on arrival. */
  at: number;
}

export interface AgentServer {
  /** `http://HOST:PORT`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Requests in arrival order; empty unless `recordRequests`. */
  readonly requests: RecordedRequest[];
  /** Agent runs started so far (idempotent repeats and injected failures run nothing). */
  readonly agentRuns: number;
  /** Stops accepting, lets in-flight requests finish briefly, then cuts them off. Idempotent. */
  close(): Promise<void>;
}
