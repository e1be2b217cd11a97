/**
 * Wire types of the goagent agent-service HTTP API (SPEC §2). Field names are the JSON names;
 * `options.timeout` and `latency` are integer nanoseconds, as Go's time.Duration.
 */
export interface AgentOptions {
  temperature?: number;
  max_tokens?: number;
  model?: string;
  enable_tools?: boolean;
  allowed_tools?: string[];
  max_tool_calls?: number;
  enable_memory?: boolean;
  load_history?: boolean;
  save_to_memory?: boolean;
  max_history_length?: number;
  /** Nanoseconds. */
  timeout?: number;
  [key: string]: unknown;
}

export interface AgentInput {
  task?: string;
  instruction?: string;
  context?: Record<string, unknown>;
  options?: AgentOptions;
  session_id?: string;
  /** RFC 3339; filled with the attempt's time when absent or empty. */
  timestamp?: string;
}

export type AgentStatus = "success" | "failed" | "partial";

export interface TokenUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  [key: string]: unknown;
}

export interface AgentOutput {
  result: unknown;
  status: AgentStatus | string;
  message: string;
  reasoning_steps: unknown[];
  tool_calls: unknown[];
  token_usage?: TokenUsage;
  /** Nanoseconds. */
  latency: number;
  timestamp: string;
  metadata: Record<string, unknown>;
}

export interface AsyncSubmitResponse {
  task_id: string;
}

export interface AgentListResponse {
  agents: string[];
}
