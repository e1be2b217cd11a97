import { AgentctlError } from "../errors.js";

/**
 * Rejects names that would change the path once a server or proxy normalises it, then encodes
 * the name as exactly one path segment.
 */
export function pathSegment(kind: "agent" | "task id", value: string): string {
  if (typeof value !== "string" || value === "" || value === "." || value === "..") {
    throw new AgentctlError("invalid", `${kind} ${JSON.stringify(value)} is not a usable name`);
  }
  return encodeURIComponent(value);
}

/** An endpoint or path without its trailing slashes (`http://h/team/` is `http://h/team`). */
export function withoutTrailingSlash(endpoint: string): string {
  return endpoint.endsWith("/") ? endpoint.replace(/\/+$/, "") : endpoint;
}

/** Joins an endpoint (which may carry a path prefix) and an absolute API path, one slash between. */
export function joinEndpoint(endpoint: string, path: string): string {
  return withoutTrailingSlash(endpoint) + (path.startsWith("/") ? path : `/${path}`);
}

export const apiPaths = {
  execute: (agent: string) => `/api/v1/agents/${pathSegment("agent", agent)}/execute`,
  executeAsync: (agent: string) => `/api/v1/agents/${pathSegment("agent", agent)}/execute/async`,
  task: (taskId: string) => `/api/v1/agents/tasks/${pathSegment("task id", taskId)}`,
  health: () => "/health",
  agents: () => "/api/v1/agents",
};
