import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import { AgentctlError } from "../errors.js";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../protocol/json-depth.js";
import { type AbortSubscription, onAbort } from "../resilience/abort.js";

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** How much of an error body is kept (as text) on an `http_status` error. */
export const ERROR_BODY_KEEP = 4 * 1024;

export interface TextResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * Sends one request through undici's dispatch API and collects the response as text: a 2xx
 * body within `limit` bytes, the first {@link ERROR_BODY_KEEP} bytes of any other. A declared
 * `content-length` over the limit fails before anything is read; a body growing past it fails
 * as soon as it does, with `bad_response`, and the connection is dropped either way, so memory
 * stays bounded. No stream per response: at thousands of calls a second, a Readable with its
 * events was the largest single cost of a call in the client.
 *
 * A response resolves one event-loop turn after it ended: undici hands the keep-alive socket
 * back to its pool in a `setImmediate` queued just after it told us of the end, and a caller
 * making its next call right away should reuse that socket rather than open another.
 */
export function dispatchText(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  signal: AbortSignal | undefined,
  limit: number,
  endpoint: string,
): Promise<TextResponse> {
  return new Promise((resolve, reject) => {
    dispatcher.dispatch(options, new TextCollector(signal, limit, endpoint, resolve, reject));
  });
}

class TextCollector implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  private readonly subscription: AbortSubscription | undefined;

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly limit: number,
    private readonly endpoint: string,
    private readonly resolve: (r: TextResponse) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    if (signal && !signal.aborted) {
      this.subscription = onAbort(signal, () => this.controller?.abort(signal.reason));
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Aborted while queued: undici only learns of it now.
    if (this.signal?.aborted) controller.abort(this.signal.reason);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (status < 200) return; // 1xx: informational, the real response follows.
    this.status = status;
    this.headers = headers;
    if (!this.ok) return;
    const declared = Number(headers["content-length"]);
    if (declared > this.limit) {
      this.stop(
        controller,
        new AgentctlError(
          "bad_response",
          `response of ${declared} bytes exceeds the limit of ${this.limit}`,
          {
            endpoint: this.endpoint,
          },
        ),
      );
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    this.chunks.push(chunk);
    if (!this.ok) {
      // Enough of an error body to show: the rest is dropped with the connection.
      if (this.size >= ERROR_BODY_KEEP) this.stop(controller);
    } else if (this.size > this.limit) {
      this.stop(
        controller,
        new AgentctlError("bad_response", `response exceeds the limit of ${this.limit} bytes`, {
          endpoint: this.endpoint,
        }),
      );
    }
  }

  onResponseEnd(): void {
    this.settle();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.settle(err);
  }

  private get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** Settles now (with `err`, or the text so far) and drops the rest of the response. */
  private stop(controller: Dispatcher.DispatchController, err?: Error): void {
    this.settle(err);
    controller.abort(err ?? new AgentctlError("bad_response", "response body cut short on purpose"));
  }

  private settle(err?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.subscription?.dispose();
    if (err !== undefined) this.reject(err);
    else {
      const response = { status: this.status, headers: this.headers, body: this.text() };
      // Queued from a microtask, so behind undici's own setImmediate (see dispatchText).
      queueMicrotask(() => setImmediate(this.resolve, response));
    }
  }

  private text(): string {
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    if (!this.ok) return buf.subarray(0, ERROR_BODY_KEEP).toString("utf8");
    // Like undici's body.text(): a UTF-8 byte order mark is not part of the text.
    const bom = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
    return buf.toString("utf8", bom);
  }
}

export function parseJson(text: string, endpoint: string): unknown {
  if (text.length === 0) throw new AgentctlError("bad_response", "empty response body", { endpoint });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AgentctlError("bad_response", "response body is not JSON", { endpoint, cause: err });
  }
  if (nestsDeeperThan(value, text)) {
    throw new AgentctlError("bad_response", `response body nests deeper than ${MAX_JSON_DEPTH} levels`, {
      endpoint,
    });
  }
  return value;
}
