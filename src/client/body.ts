import { AgentctlError } from "../errors.js";

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** How much of an error body is kept (as text) on an `http_status` error. */
export const ERROR_BODY_KEEP = 4 * 1024;

interface ReadableBody extends AsyncIterable<Buffer> {
  destroy(err?: Error): unknown;
}

function declaredLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  const v = headers["content-length"];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Reads a body while counting it: past `limit` bytes the stream is destroyed and the call fails
 * with `bad_response`, so memory stays bounded whatever the server sends. A declared
 * `content-length` over the limit fails before anything is read.
 */
export async function readBodyCapped(
  body: ReadableBody,
  headers: Record<string, string | string[] | undefined>,
  limit: number,
  endpoint: string,
): Promise<Buffer> {
  const declared = declaredLength(headers);
  if (declared !== undefined && declared > limit) {
    body.destroy();
    throw new AgentctlError("bad_response", `response of ${declared} bytes exceeds the limit of ${limit}`, {
      endpoint,
    });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new AgentctlError("bad_response", `response exceeds the limit of ${limit} bytes`, { endpoint });
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}

/** Reads at most `keep` bytes of an error body as text and discards the rest. */
export async function readErrorText(body: ReadableBody, keep: number = ERROR_BODY_KEEP): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= keep) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, keep).toString("utf8");
}

export function parseJson(buf: Buffer, endpoint: string): unknown {
  if (buf.length === 0) throw new AgentctlError("bad_response", "empty response body", { endpoint });
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (err) {
    throw new AgentctlError("bad_response", "response body is not JSON", { endpoint, cause: err });
  }
}
