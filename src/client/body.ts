import { AgentctlError } from "../errors.js";

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** How much of an error body is kept (as text) on an `http_status` error. */
export const ERROR_BODY_KEEP = 4 * 1024;

interface ReadableBody extends AsyncIterable<Buffer> {
  destroy(err?: Error): unknown;
  text(): Promise<string>;
}

function declaredLength(headers: Record<string, string | string[] | undefined>): number | undefined {
  const v = headers["content-length"];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * Reads a body as text within `limit` bytes. A declared `content-length` over the limit fails
 * before anything is read; one within it is read in one go (undici fails a body that does not
 * match its length). Without one, the stream is counted as it arrives and destroyed past the
 * limit. Either way the call fails with `bad_response` and memory stays bounded.
 */
export async function readBodyCapped(
  body: ReadableBody,
  headers: Record<string, string | string[] | undefined>,
  limit: number,
  endpoint: string,
): Promise<string> {
  const declared = declaredLength(headers);
  if (declared !== undefined) {
    if (declared > limit) {
      body.destroy();
      throw new AgentctlError("bad_response", `response of ${declared} bytes exceeds the limit of ${limit}`, {
        endpoint,
      });
    }
    return body.text();
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
  return Buffer.concat(chunks, size).toString("utf8");
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

export function parseJson(text: string, endpoint: string): unknown {
  if (text.length === 0) throw new AgentctlError("bad_response", "empty response body", { endpoint });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new AgentctlError("bad_response", "response body is not JSON", { endpoint, cause: err });
  }
}
