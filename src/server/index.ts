export type { AgentOutcome, BuiltInAgent, BuiltInAgentName } from "./agents.js";
export { BUILT_IN_AGENT_NAMES, BUILT_IN_AGENTS } from "./agents.js";
export { startAgentServer } from "./server.js";
export type { AgentServer, AgentServerOptions, RecordedRequest } from "./types.js";
