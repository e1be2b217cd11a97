import type { OutgoingHttpHeaders, ServerResponse } from "node:http";

/** A response ready to send, serialised once so cached and shared replies cost nothing to resend. */
export interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export function jsonReply(status: number, value: unknown, headers?: Record<string, string>): Reply {
  return headers === undefined
    ? { status, body: JSON.stringify(value) }
    : { status, body: JSON.stringify(value), headers };
}

export function errorReply(status: number, error: string, headers?: Record<string, string>): Reply {
  return jsonReply(status, { error }, headers);
}

/** Sends `reply` unless the client has gone; `close` ends the keep-alive connection afterwards. */
export function sendReply(res: ServerResponse, reply: Reply, close: boolean): void {
  if (res.headersSent || res.destroyed) return;
  const headers: OutgoingHttpHeaders = {
    ...reply.headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(reply.body),
  };
  if (close) headers.connection = "close";
  res.writeHead(reply.status, headers);
  res.end(reply.body);
}
