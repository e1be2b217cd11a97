import { randomUUID } from "node:crypto";
import { Agent, type Dispatcher } from "undici";
import { AgentctlError } from "../errors.js";
import { decodeAgentList, decodeOutput, decodeTaskId, encodeInput } from "../protocol/encoding.js";
import { apiPaths, pathSegment, withoutTrailingSlash } from "../protocol/paths.js";
import { newTraceId, traceparent } from "../protocol/trace.js";
import type { AgentInput, AgentOutput } from "../protocol/types.js";
import { deadline, sleep, throwIfAborted } from "../resilience/abort.js";
import { parseRetryAfter } from "../resilience/backoff.js";
import { CircuitBreaker, type CircuitBreakerConfig } from "../resilience/circuit-breaker.js";
import { USER_AGENT } from "../version.js";
import { DEFAULT_MAX_RESPONSE_BYTES, dispatchText, parseJson, type TextResponse } from "./body.js";
import { classifyFailure } from "./errors.js";

export interface ClientOptions {
  /** Per-call timeout in ms (default 60 s). */
  timeout?: number;
  /** Headers sent on every call (values are secrets: never logged). */
  headers?: Record<string, string>;
  /** Response body cap in bytes (default 16 MiB). */
  maxResponseBytes?: number;
  /** Defaults for the per-endpoint circuit breakers. */
  circuitBreaker?: CircuitBreakerConfig;
  /** Trace id shared by every call of this client (default: a random one). */
  traceId?: string;
  /** Most connections kept per origin (default unlimited; the coordinator bounds concurrency). */
  connectionsPerOrigin?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** This call's timeout in ms; overrides the client's. */
  timeout?: number;
  /** Sent as `idempotency-key` on execute calls (default: a random one per call). */
  idempotencyKey?: string;
  /** Extra headers for this call (e.g. a service's configured headers). */
  headers?: Record<string, string>;
  maxResponseBytes?: number;
}

export interface AsyncResult {
  completed: boolean;
  output?: AgentOutput;
}

/** Timeouts from this long on are left to undici's coarse timers (see send()). */
const COARSE_TIMEOUT_MIN_MS = 5000;

interface Endpoint {
  origin: string;
  /** Path prefix without a trailing slash ("" for none). */
  prefix: string;
}

/**
 * HTTP client for goagent agent services. One keep-alive connection pool per origin (undici
 * Agent), one circuit breaker per endpoint; every call really aborts its request on timeout or
 * cancellation.
 */
export class Client {
  readonly timeout: number;
  readonly maxResponseBytes: number;
  readonly traceId: string;
  private readonly headers: Record<string, string>;
  private readonly breakerConfig: CircuitBreakerConfig;
  private readonly dispatcher: Dispatcher;
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private closed = false;

  constructor(options: ClientOptions = {}) {
    this.timeout = options.timeout && options.timeout > 0 ? options.timeout : 60_000;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.headers = { ...options.headers };
    this.breakerConfig = options.circuitBreaker ?? {};
    this.traceId = options.traceId ?? newTraceId();
    this.dispatcher = new Agent({
      connections: options.connectionsPerOrigin ?? null,
      keepAliveTimeout: 30_000,
      // Each request sets its own timeouts (see send()).
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  /** The breaker of one endpoint, created on first use (with `config` if given then). */
  circuitBreaker(endpoint: string, config?: CircuitBreakerConfig): CircuitBreaker {
    let breaker = this.breakers.get(endpoint);
    if (!breaker) {
      breaker = new CircuitBreaker({ ...this.breakerConfig, ...config });
      this.breakers.set(endpoint, breaker);
    }
    return breaker;
  }

  executeAgent(
    endpoint: string,
    agent: string,
    input: AgentInput,
    options: CallOptions = {},
  ): Promise<AgentOutput> {
    return this.exchange(EXECUTE, endpoint, agent, input, options);
  }

  executeAgentAsync(
    endpoint: string,
    agent: string,
    input: AgentInput,
    options: CallOptions = {},
  ): Promise<string> {
    return this.exchange(EXECUTE_ASYNC, endpoint, agent, input, options);
  }

  getAsyncResult(endpoint: string, taskId: string, options: CallOptions = {}): Promise<AsyncResult> {
    return this.exchange(TASK, endpoint, taskId, undefined, options);
  }

  /**
   * Polls until the task completes. `options.timeout` bounds each poll; the wait as a whole is
   * bounded by `options.signal` only.
   */
  async waitForAsyncResult(
    endpoint: string,
    taskId: string,
    pollIntervalMs = 1000,
    options: CallOptions = {},
  ): Promise<AgentOutput> {
    pathSegment("task id", taskId);
    for (;;) {
      await sleep(pollIntervalMs, options.signal);
      const r = await this.getAsyncResult(endpoint, taskId, options);
      if (r.completed) return r.output!;
    }
  }

  /** Resolves when `GET /health` answers 200; throws the classified failure otherwise. */
  async ping(endpoint: string, options: CallOptions = {}): Promise<void> {
    const res = await this.send("GET", endpoint, apiPaths.health(), undefined, options);
    if (res.status !== 200) throw statusError(res, endpoint);
  }

  async listAgents(endpoint: string, options: CallOptions = {}): Promise<string[]> {
    const res = await this.send("GET", endpoint, apiPaths.agents(), undefined, options);
    if (res.status !== 200) throw statusError(res, endpoint);
    return decodeAgentList(parseJson(res.body, endpoint));
  }

  /** Closes every pooled connection; calls after this fail with `invalid`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.dispatcher.close();
  }

  private endpoint(endpoint: string): Endpoint {
    let e = this.endpoints.get(endpoint);
    if (!e) {
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw new AgentctlError("invalid", `endpoint ${JSON.stringify(endpoint)} is not a URL`, { endpoint });
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new AgentctlError("invalid", `endpoint ${endpoint} must be http or https`, { endpoint });
      }
      e = { origin: url.origin, prefix: withoutTrailingSlash(url.pathname) };
      this.endpoints.set(endpoint, e);
    }
    return e;
  }

  /**
   * One exchange with an agent endpoint through its circuit breaker: an execute call POSTs
   * `input` (idempotently), a task poll GETs; errors and unexpected statuses count against the
   * endpoint. Everything happens inside this async function, so even a bad name rejects.
   */
  private async exchange<T>(
    kind: Exchange<T>,
    endpoint: string,
    name: string,
    input: AgentInput | undefined,
    options: CallOptions,
  ): Promise<T> {
    const path = kind.route(name);
    // An execute without an input (a JavaScript caller may omit it) is refused by encodeInput.
    const body = kind.post ? serialise(encodeInput(input as AgentInput)) : undefined;
    const agent = kind.post ? name : undefined;
    // The breaker's parts rather than `execute`: no closure per call on the hot path.
    const breaker = this.circuitBreaker(endpoint);
    const probe = breaker.admit();
    try {
      const res = await this.send(
        kind.post ? "POST" : "GET",
        endpoint,
        path,
        body,
        options,
        agent,
        kind.post,
      );
      const value = kind.read(res, endpoint, agent);
      breaker.recordSuccess(probe);
      return value;
    } catch (err) {
      breaker.recordFailure(probe, err);
      throw err;
    }
  }

  private async send(
    method: "GET" | "POST",
    endpoint: string,
    path: string,
    body: string | undefined,
    options: CallOptions,
    agent?: string,
    idempotent?: boolean,
  ): Promise<TextResponse> {
    if (this.closed) throw new AgentctlError("invalid", "client is closed", { endpoint });
    throwIfAborted(options.signal);
    const { origin, prefix } = this.endpoint(endpoint);
    const headers: Record<string, string> = {
      accept: "application/json",
      "user-agent": USER_AGENT,
      traceparent: traceparent(this.traceId),
      ...this.headers,
      ...options.headers,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (idempotent) headers["idempotency-key"] = options.idempotencyKey ?? randomUUID();
    const limit = options.maxResponseBytes ?? this.maxResponseBytes;
    // Long timeouts are undici's own (until the headers, then between body chunks): they cost
    // nothing per request but tick coarsely (about half a second). Short ones get a precise
    // timer of ours. Cancellation is the caller's signal either way.
    const timeout = options.timeout ?? this.timeout;
    const precise = timeout < COARSE_TIMEOUT_MIN_MS ? deadline(timeout, options.signal) : undefined;
    try {
      return await dispatchText(
        this.dispatcher,
        {
          origin,
          path: prefix + path,
          method,
          headers,
          body,
          headersTimeout: precise ? 0 : timeout,
          bodyTimeout: precise ? 0 : timeout,
        },
        precise?.signal ?? options.signal,
        limit,
        endpoint,
      );
    } catch (err) {
      throw classifyFailure(err, {
        endpoint,
        agent,
        timeout,
        timedOut: precise?.timedOut(),
        parent: options.signal,
      });
    } finally {
      precise?.dispose();
    }
  }
}

/** What one kind of agent exchange calls and how it reads the answer. */
interface Exchange<T> {
  route: (name: string) => string;
  /** POST with an AgentInput body (execute), or GET (task poll). */
  post: boolean;
  /** The value of a response; throws for a status this kind does not expect. */
  read: (res: TextResponse, endpoint: string, agent: string | undefined) => T;
}

const EXECUTE: Exchange<AgentOutput> = { route: apiPaths.execute, post: true, read: readOutput };
const EXECUTE_ASYNC: Exchange<string> = { route: apiPaths.executeAsync, post: true, read: readTaskId };
const TASK: Exchange<AsyncResult> = { route: apiPaths.task, post: false, read: readAsyncResult };

function readOutput(res: TextResponse, endpoint: string, agent: string | undefined): AgentOutput {
  if (res.status !== 200) throw statusError(res, endpoint, agent);
  return decodeOutput(parseJson(res.body, endpoint));
}

function readTaskId(res: TextResponse, endpoint: string, agent: string | undefined): string {
  if (res.status !== 202) throw statusError(res, endpoint, agent);
  return decodeTaskId(parseJson(res.body, endpoint));
}

function readAsyncResult(res: TextResponse, endpoint: string): AsyncResult {
  if (res.status === 202) return { completed: false };
  if (res.status !== 200) throw statusError(res, endpoint);
  return { completed: true, output: decodeOutput(parseJson(res.body, endpoint)) };
}

/** An input JSON cannot carry (a cycle, a BigInt, nesting deeper than the stack) is `invalid`. */
function serialise(input: AgentInput): string {
  try {
    return JSON.stringify(input);
  } catch (err) {
    throw new AgentctlError("invalid", `agent input cannot be sent as JSON: ${(err as Error).message}`);
  }
}

function statusError(res: TextResponse, endpoint: string, agent?: string): AgentctlError {
  const text = res.body;
  const retryAfterMs =
    res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers["retry-after"]) : undefined;
  return new AgentctlError(
    "http_status",
    `HTTP ${res.status} from ${agent ? `${agent} at ` : ""}${endpoint}${text ? `: ${text.slice(0, 200)}` : ""}`,
    {
      status: res.status,
      endpoint,
      agent,
      body: text,
      retryAfterMs,
    },
  );
}
