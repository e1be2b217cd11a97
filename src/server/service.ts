import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AgentInput, AgentOutput } from "../protocol/types.js";
import { type AgentOutcome, type BuiltInAgent, delay } from "./agents.js";
import { Flight } from "./flight.js";
import { HttpError, parseAgentInput, readBody } from "./input.js";
import { errorReply, jsonReply, type Reply, sendReply } from "./reply.js";
import { matchRoute, type Route } from "./routes.js";
import { ExpiringMap } from "./store.js";
import type { RecordedRequest } from "./types.js";

export interface ServiceConfig {
  readonly agents: ReadonlyMap<string, BuiltInAgent>;
  readonly latencyMs: number;
  readonly failRate: number;
  readonly random: () => number;
  readonly ttlMs: number;
  readonly maxBodyBytes: number;
  /** Present when requests are recorded. */
  readonly requests?: RecordedRequest[];
}

/** Bounds on remembered idempotency keys and finished async tasks, per store. */
const MAX_ENTRIES = 100_000;
/** ~32 Mi characters of keys and bodies: 100,000 small echo results fit, 100,000 large ones do not. */
const MAX_CHARS = 32 * 1024 * 1024;

const replyChars = (r: Reply): number => r.body.length;

const HEALTHY = jsonReply(200, { status: "healthy" });
const RUNNING = jsonReply(202, { status: "running" });
const INJECTED = errorReply(503, "injected failure");

function toOutput(agent: string, outcome: AgentOutcome, latencyNs: number): AgentOutput {
  return {
    result: outcome.result ?? null,
    status: outcome.status ?? "success",
    message: outcome.message ?? "",
    reasoning_steps: [],
    tool_calls: [],
    latency: latencyNs,
    timestamp: new Date().toISOString(),
    metadata: { agent, server: "agentctl" },
  };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The request handling of the reference agent server (SPEC §2, §7), independent of the listener. */
export class AgentService {
  agentRuns = 0;
  private closing = false;
  private readonly listReply: Reply;
  /** Execute results, or runs still in progress, by agent + idempotency key. */
  private readonly executions: ExpiringMap<Flight | Reply>;
  /** Async task ids by agent + idempotency key. */
  private readonly submissions: ExpiringMap<string>;
  private readonly running = new Map<string, AbortController>();
  private readonly finished: ExpiringMap<Reply>;

  constructor(private readonly config: ServiceConfig) {
    this.listReply = jsonReply(200, { agents: [...config.agents.keys()] });
    const limits = { ttlMs: config.ttlMs, maxEntries: MAX_ENTRIES, maxChars: MAX_CHARS };
    // A run in flight holds no result yet; its reply is weighed when it replaces the flight.
    this.executions = new ExpiringMap({
      ...limits,
      sizeOf: (v) => (v instanceof Flight ? 0 : replyChars(v)),
    });
    this.submissions = new ExpiringMap({ ...limits, sizeOf: (id) => id.length });
    this.finished = new ExpiringMap({ ...limits, sizeOf: replyChars });
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    this.dispatch(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) this.send(res, errorReply(err.status, err.message), err.status === 413);
      else this.send(res, errorReply(500, errorMessage(err)));
    });
  };

  /** From now on every response closes its connection; background async runs are aborted. */
  shutdown(): void {
    this.closing = true;
    for (const controller of this.running.values()) controller.abort();
  }

  private send(res: ServerResponse, reply: Reply, close = false): void {
    sendReply(res, reply, close || this.closing);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? "/";
    const record = this.record(req, target);
    const query = target.indexOf("?");
    const route = matchRoute(req.method ?? "GET", query === -1 ? target : target.slice(0, query));
    if (!("kind" in route)) return this.send(res, route);
    switch (route.kind) {
      case "health":
        return this.send(res, HEALTHY);
      case "list":
        return this.send(res, this.listReply);
      case "task":
        return this.send(res, this.taskReply(route.param));
      default:
        return this.agentCall(req, res, route, record);
    }
  }

  private record(req: IncomingMessage, path: string): RecordedRequest | undefined {
    if (this.config.requests === undefined) return undefined;
    const entry: RecordedRequest = { method: req.method ?? "", path, headers: req.headers, at: Date.now() };
    this.config.requests.push(entry);
    return entry;
  }

  private async agentCall(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    record: RecordedRequest | undefined,
  ): Promise<void> {
    const agent = this.config.agents.get(route.param);
    if (agent === undefined) {
      return this.send(res, errorReply(404, `unknown agent ${JSON.stringify(route.param)}`));
    }
    const input = parseAgentInput(await readBody(req, this.config.maxBodyBytes));
    if (record !== undefined) record.body = input;
    const { failRate, random } = this.config;
    if (failRate > 0 && random() < failRate) return this.send(res, INJECTED);
    const key = req.headers["idempotency-key"];
    // Keys are per agent (and per call kind): the same key for another agent is another call.
    const cacheKey = typeof key === "string" && key !== "" ? `${route.param}\n${key}` : undefined;
    const run = (signal: AbortSignal) => this.run(route.param, agent, input, signal);
    if (route.kind === "submit") return this.send(res, this.submit(run, cacheKey));
    const cached = cacheKey === undefined ? undefined : this.executions.get(cacheKey);
    if (cached !== undefined && !(cached instanceof Flight)) return this.send(res, cached);
    let flight = cached instanceof Flight && !cached.abandoned ? cached : undefined;
    if (flight === undefined) {
      const fresh = new Flight(run);
      if (cacheKey !== undefined) {
        this.executions.set(cacheKey, fresh);
        fresh.promise.then(
          // Keep only the reply: a settled Flight (abort controller and all) is heavy x 100k.
          (reply) => this.executions.replace(cacheKey, fresh, reply),
          // A run that did not finish (aborted, crashed) is not a result to replay.
          () => this.executions.replace(cacheKey, fresh, undefined),
        );
      }
      flight = fresh;
    }
    flight.attach(res);
    this.send(res, await flight.promise);
  }

  private async run(
    name: string,
    agent: BuiltInAgent,
    input: AgentInput,
    signal: AbortSignal,
  ): Promise<Reply> {
    this.agentRuns++;
    const started = process.hrtime.bigint();
    if (this.config.latencyMs > 0) await delay(this.config.latencyMs, signal);
    const outcome = await agent(input, signal);
    return jsonReply(200, toOutput(name, outcome, Number(process.hrtime.bigint() - started)));
  }

  private submit(run: (signal: AbortSignal) => Promise<Reply>, cacheKey: string | undefined): Reply {
    const known = cacheKey === undefined ? undefined : this.submissions.get(cacheKey);
    // A key whose task has expired meanwhile must not hand out a task id that answers 404.
    if (known !== undefined && (this.running.has(known) || this.finished.get(known) !== undefined)) {
      return jsonReply(202, { task_id: known });
    }
    const taskId = randomUUID();
    const controller = new AbortController();
    this.running.set(taskId, controller);
    void run(controller.signal)
      .catch((err: unknown) => errorReply(500, errorMessage(err)))
      .then((reply) => {
        this.running.delete(taskId);
        if (!controller.signal.aborted) this.finished.set(taskId, reply);
      });
    if (cacheKey !== undefined) this.submissions.set(cacheKey, taskId);
    return jsonReply(202, { task_id: taskId });
  }

  private taskReply(taskId: string): Reply {
    if (this.running.has(taskId)) return RUNNING;
    return this.finished.get(taskId) ?? errorReply(404, `unknown task ${JSON.stringify(taskId)}`);
  }
}
