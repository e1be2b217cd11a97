import { EventEmitter } from "node:events";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A scriptable agent server for engine tests: a real node:http listener on 127.0.0.1:0 whose
 * answers are chosen per request (one-shot queue, routes, then a goagent-like default), with a
 * log of what arrived, socket accounting, and failure modes a real network produces.
 */

export interface ReceivedRequest {
  method: string;
  /** The request target exactly as received (never decoded or normalised). */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  /** Id of the TCP connection it came on (1, 2, … in accept order). */
  socket: number;
  /** Date.now() when the request (with its body) had arrived. */
  at: number;
}

export interface Reply {
  /** Default 200. */
  status?: number;
  headers?: Record<string, string | number | string[]>;
  /** Sent as JSON with content-type application/json. */
  json?: unknown;
  /** Sent as is (content-length set unless `declaredLength` or streaming). */
  body?: string | Buffer;
  /** Wait this long before answering (aborted if the client goes away). */
  delayMs?: number;
  /** Never answer; the request stays open until the client (or close()) ends the socket. */
  hang?: boolean;
  /** Reset the connection instead of answering (TCP RST where the platform allows). */
  reset?: boolean;
  /** Send the headers and this many bytes of `body` (declared in full), then destroy the socket. */
  destroyAfterBytes?: number;
  /** A chunked body of `totalBytes` (Infinity: endless) without content-length, with backpressure. */
  stream?: { totalBytes: number; chunkBytes?: number };
  /** Declare this content-length, send `body` (if any), then hold the socket open. */
  declaredLength?: number;
}

/** Chooses a reply; `n` counts the requests this route has matched, from 1 (the fallback: all requests). */
export type Handler = (req: ReceivedRequest, n: number) => Reply | Promise<Reply>;
export type Responder = Reply | Handler;
/** `"METHOD /path"`, `"/path"` (exact, raw), a RegExp on the raw path, or a predicate. */
export type Match = string | RegExp | ((req: ReceivedRequest) => boolean);

interface Route {
  match: (req: ReceivedRequest) => boolean;
  responder: Responder;
  hits: number;
}

interface Queued {
  match: (req: ReceivedRequest) => boolean;
  reply: Reply;
}

export interface FakeAgentServerOptions {
  /** Agents reported by the default `GET /api/v1/agents` (default ["echo"]). */
  agents?: string[];
}

/** A complete goagent AgentOutput with overrides. */
export function agentOutput(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    result: null,
    status: "success",
    message: "",
    reasoning_steps: [],
    tool_calls: [],
    latency: 1000,
    timestamp: new Date().toISOString(),
    metadata: {},
    ...fields,
  };
}

function toMatcher(match: Match): (req: ReceivedRequest) => boolean {
  if (typeof match === "function") return match;
  if (match instanceof RegExp) return (req) => match.test(req.path);
  const space = match.indexOf(" ");
  if (space === -1) return (req) => req.path === match;
  const method = match.slice(0, space).toUpperCase();
  const path = match.slice(space + 1);
  return (req) => req.method === method && req.path === path;
}

const EXECUTE = /\/api\/v1\/agents\/([^/?]+)\/execute(\/async)?$/;
const TASK = /\/api\/v1\/agents\/tasks\/([^/?]+)$/;

export class FakeAgentServer {
  readonly requests: ReceivedRequest[] = [];
  url = "";
  port = 0;
  /** Connections accepted so far. */
  totalSockets = 0;
  /** Requests currently being answered, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;
  /** Body bytes written by `stream` and `destroyAfterBytes` replies. */
  bytesStreamed = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly socketIds = new WeakMap<Socket, number>();
  private readonly events = new EventEmitter();
  private readonly queue: Queued[] = [];
  private readonly routes: Route[] = [];
  private fallbackResponder: Responder;
  private readonly tasks = new Map<string, unknown>();
  private taskCounter = 0;
  private closed = false;

  constructor(options: FakeAgentServerOptions = {}) {
    const agents = options.agents ?? ["echo"];
    this.fallbackResponder = (req) => this.defaultReply(req, agents);
    this.events.setMaxListeners(0);
    this.server = createServer({ keepAlive: true, noDelay: true }, (req, res) => {
      void this.handle(req, res);
    });
    // Never the side that closes an idle keep-alive connection during a test.
    this.server.keepAliveTimeout = 120_000;
    this.server.headersTimeout = 121_000;
    this.server.requestTimeout = 0;
    this.server.on("connection", (socket: Socket) => {
      this.totalSockets++;
      this.socketIds.set(socket, this.totalSockets);
      this.sockets.add(socket);
      this.changed();
      socket.on("close", () => {
        this.sockets.delete(socket);
        this.changed();
      });
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /** Connections currently open. */
  get openSockets(): number {
    return this.sockets.size;
  }

  /** Answers requests matching `match` with `responder` (later routes win over earlier ones). */
  route(match: Match, responder: Responder): this {
    this.routes.unshift({ match: toMatcher(match), responder, hits: 0 });
    return this;
  }

  /** One-shot replies for matching requests, used in order before any route. */
  enqueue(match: Match, ...replies: Reply[]): this {
    const m = toMatcher(match);
    for (const reply of replies) this.queue.push({ match: m, reply });
    return this;
  }

  /** Replaces the default (goagent-like) behaviour for requests nothing else matched. */
  fallback(responder: Responder): this {
    this.fallbackResponder = responder;
    return this;
  }

  /** Requests whose raw path matches (all when no match is given). */
  received(match?: Match): ReceivedRequest[] {
    if (match === undefined) return [...this.requests];
    const m = toMatcher(match);
    return this.requests.filter(m);
  }

  /** Agent calls (execute, execute async) received so far. */
  get agentCalls(): ReceivedRequest[] {
    return this.requests.filter((r) => r.method === "POST" && EXECUTE.test(r.path));
  }

  /**
   * Resolves when `condition` holds, re-checked on every request, response end and socket
   * change (and every 20 ms besides); rejects after `timeoutMs`.
   */
  waitFor(condition: () => boolean, timeoutMs = 5000, what = "condition"): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!condition()) return;
        cleanup();
        resolve();
      };
      const poll = setInterval(check, 20);
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`fake agent server: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearInterval(poll);
        clearTimeout(timer);
        this.events.off("change", check);
      };
      this.events.on("change", check);
    });
  }

  waitForRequests(n: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.requests.length >= n, timeoutMs, `${n} requests`);
  }

  waitForSockets(n: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.sockets.size === n, timeoutMs, `${n} open sockets`);
  }

  /**
   * Resolves when no request is being answered. A `hang` reply only ends when its socket closes,
   * so this proves that a client really aborted its hanging requests.
   */
  waitForIdle(timeoutMs = 5000): Promise<void> {
    return this.waitFor(() => this.inFlight === 0, timeoutMs, "no request in flight");
  }

  /** Stops listening and destroys every connection, hanging ones included. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await done;
  }

  private changed(): void {
    this.events.emit("change");
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let counted = true;
    res.on("close", () => {
      if (counted) {
        counted = false;
        this.inFlight--;
        this.changed();
      }
    });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      return;
    }
    const body = Buffer.concat(chunks).toString("utf8");
    let json: unknown;
    try {
      json = body === "" ? undefined : JSON.parse(body);
    } catch {
      json = undefined;
    }
    const received: ReceivedRequest = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers: req.headers,
      body,
      json,
      socket: this.socketIds.get(req.socket) ?? 0,
      at: Date.now(),
    };
    this.requests.push(received);
    this.changed();
    let reply: Reply;
    try {
      reply = await this.pick(received);
    } catch (err) {
      reply = { status: 500, body: `fake server handler threw: ${String(err)}` };
    }
    await this.send(req, res, reply);
  }

  private async pick(req: ReceivedRequest): Promise<Reply> {
    const q = this.queue.findIndex((entry) => entry.match(req));
    if (q !== -1) {
      const [entry] = this.queue.splice(q, 1);
      return entry!.reply;
    }
    for (const route of this.routes) {
      if (!route.match(req)) continue;
      route.hits++;
      return typeof route.responder === "function" ? route.responder(req, route.hits) : route.responder;
    }
    const r = this.fallbackResponder;
    return typeof r === "function" ? r(req, this.requests.length) : r;
  }

  private defaultReply(req: ReceivedRequest, agents: string[]): Reply {
    const path = req.path.split("?")[0]!;
    if (req.method === "GET" && path.endsWith("/health")) return { json: { status: "healthy" } };
    if (req.method === "GET" && path.endsWith("/api/v1/agents")) return { json: { agents } };
    const exec = EXECUTE.exec(path);
    if (req.method === "POST" && exec) {
      const output = agentOutput({ result: { agent: decodeURIComponent(exec[1]!), input: req.json } });
      if (!exec[2]) return { json: output };
      const id = `task-${++this.taskCounter}`;
      this.tasks.set(id, output);
      return { status: 202, json: { task_id: id } };
    }
    const task = TASK.exec(path);
    if (req.method === "GET" && task) {
      const output = this.tasks.get(decodeURIComponent(task[1]!));
      return output === undefined ? { status: 404, json: { error: "task not found" } } : { json: output };
    }
    return { status: 404, json: { error: "not found" } };
  }

  private async send(req: IncomingMessage, res: ServerResponse, reply: Reply): Promise<void> {
    const socket = req.socket;
    if (reply.delayMs !== undefined && reply.delayMs > 0) {
      const waited = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(true), reply.delayMs);
        res.once("close", () => {
          clearTimeout(t);
          resolve(false);
        });
      });
      if (!waited || res.destroyed) return;
    }
    if (reply.reset) {
      if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
      else socket.destroy();
      return;
    }
    if (reply.hang) return; // the socket's close ends it
    const status = reply.status ?? 200;
    const headers: Record<string, string | number | string[]> = { ...reply.headers };
    let payload: Buffer | undefined;
    if (reply.json !== undefined) {
      payload = Buffer.from(JSON.stringify(reply.json));
      headers["content-type"] ??= "application/json";
    } else if (reply.body !== undefined) {
      payload = Buffer.isBuffer(reply.body) ? reply.body : Buffer.from(reply.body);
    }
    if (reply.stream) {
      res.writeHead(status, headers);
      await this.stream(res, reply.stream.totalBytes, reply.stream.chunkBytes ?? 64 * 1024);
      return;
    }
    if (reply.declaredLength !== undefined) {
      headers["content-length"] = reply.declaredLength;
      res.writeHead(status, headers);
      if (payload) res.write(payload);
      return; // held open: the body never completes
    }
    if (reply.destroyAfterBytes !== undefined) {
      const full = payload ?? Buffer.alloc(reply.destroyAfterBytes * 2 + 16, "x");
      headers["content-length"] = full.length;
      res.writeHead(status, headers);
      const part = full.subarray(0, reply.destroyAfterBytes);
      this.bytesStreamed += part.length;
      res.write(part, () => socket.destroy());
      return;
    }
    headers["content-length"] = payload?.length ?? 0;
    res.writeHead(status, headers);
    res.end(payload);
  }

  private async stream(res: ServerResponse, total: number, chunkBytes: number): Promise<void> {
    const chunk = Buffer.alloc(chunkBytes, "x");
    let sent = 0;
    while (sent < total && !res.destroyed && !this.closed) {
      const part = total - sent < chunkBytes ? chunk.subarray(0, total - sent) : chunk;
      sent += part.length;
      this.bytesStreamed += part.length;
      if (!res.write(part)) {
        const drained = await new Promise<boolean>((resolve) => {
          const onDrain = () => done(true);
          const onClose = () => done(false);
          const done = (v: boolean) => {
            res.off("drain", onDrain);
            res.off("close", onClose);
            resolve(v);
          };
          res.on("drain", onDrain);
          res.on("close", onClose);
        });
        if (!drained) return;
      }
    }
    if (!res.destroyed) res.end();
  }
}

/** Starts a fake agent server on 127.0.0.1 and a free port. */
export function startFakeAgentServer(options: FakeAgentServerOptions = {}): Promise<FakeAgentServer> {
  return new FakeAgentServer(options).listen();
}

/** A port nothing listens on (listened on, then closed): connecting to it is refused. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
