import { errorReply, type Reply } from "./reply.js";

/** `param` is the decoded agent name or task id ("" for routes without one). */
export interface Route {
  readonly kind: "health" | "list" | "execute" | "submit" | "task";
  readonly param: string;
}

interface Candidate {
  readonly method: "GET" | "POST";
  readonly kind: Route["kind"];
  readonly segment: string;
}

const API = "/api/v1/agents";
const NOT_FOUND = errorReply(404, "not found");

/**
 * The SPEC §2 routes of a raw request path (query already stripped). The path is split as sent,
 * never normalised, so an encoded `a%2Fb` or a literal `..` stays one segment. A path like
 * `/api/v1/agents/tasks/execute` fits two routes; the method picks one.
 */
function candidates(path: string): Candidate[] {
  if (path === "/health") return [{ method: "GET", kind: "health", segment: "" }];
  if (path === API) return [{ method: "GET", kind: "list", segment: "" }];
  if (!path.startsWith(`${API}/`)) return [];
  const rest = path.slice(API.length + 1).split("/");
  const [first = "", second, third] = rest;
  const found: Candidate[] = [];
  if (rest.length === 2 && second === "execute") {
    found.push({ method: "POST", kind: "execute", segment: first });
  }
  if (rest.length === 3 && second === "execute" && third === "async") {
    found.push({ method: "POST", kind: "submit", segment: first });
  }
  if (rest.length === 2 && first === "tasks") {
    found.push({ method: "GET", kind: "task", segment: second ?? "" });
  }
  return found;
}

/** The route for a request, or the error reply: 404 no such path, 405 wrong method, 400 bad encoding. */
export function matchRoute(method: string, path: string): Route | Reply {
  const found = candidates(path);
  if (found.length === 0) return NOT_FOUND;
  const wanted = method === "HEAD" ? "GET" : method;
  const hit = found.find((c) => c.method === wanted);
  if (hit === undefined) {
    const allow = [...new Set(found.map((c) => c.method))].join(", ");
    return errorReply(405, `method ${method} not allowed`, { allow });
  }
  if (!hit.segment.includes("%")) return { kind: hit.kind, param: hit.segment };
  try {
    return { kind: hit.kind, param: decodeURIComponent(hit.segment) };
  } catch {
    return errorReply(400, "bad percent-encoding in path");
  }
}
