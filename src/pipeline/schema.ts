// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
/**
 * The one definition of the pipeline file format (and of the services mapping a services file
 * holds under `services:`), as JSON Schema draft 2020-12. It is printed by `agentctl schema`,
 * shipped as `schema/pipeline.schema.json` for editors, and interpreted by `validate-schema.ts`
 * when files are loaded. Checks a schema cannot express (unknown task ids in `needs`, cycles,
 * expressions, …) live in `loader.ts`.
 */
import { DURATION_PATTERN } from "./duration.js";
import type { JsonSchema } from "./validate-schema.js";

/** Task ids: a letter or `_`, then letters, digits, `_` and `-`. */
export const TASK_ID_PATTERN = "^[A-Za-z_][A-Za-z0-9_-]*$";
/** Service names: they are also etcd key segments, so no `/`. */
export const SERVICE_NAME_PATTERN = "^[A-Za-z0-9_][A-Za-z0-9_.-]*$";
/** HTTP header names (RFC 9110 tokens). */
export const HEADER_NAME_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
/** Any string holding a `${{ … }}` expression. */
export const EXPRESSION_PATTERN = "\\$\\{\\{";

export const LOAD_BALANCING = ["round_robin", "least_pending"] as const;
export const MODES = ["parallel", "sequential"] as const;
export const OUTPUT_STATUSES = ["success", "failed", "partial"] as const;

const ref = (name: string): JsonSchema => ({ $ref: `#/$defs/${name}` });

const defs: Record<string, JsonSchema> = {
  duration: {
    description:
      'A duration: "250ms", "30s", "5m", "1h", a combination such as "1m30s", or a number of milliseconds.',
    anyOf: [
      { type: "string", maxLength: 64, pattern: DURATION_PATTERN },
      { type: "number", minimum: 0 },
    ],
    examples: ["250ms", "30s", "1m30s", 5000],
  },
  expression: {
    description:
      "A string holding ${{ }} expressions: vars.NAME, env.NAME, tasks.ID.output…, tasks.ID.outputs, item, index, run.id.",
    type: "string",
    pattern: EXPRESSION_PATTERN,
  },
  durationOrExpression: { anyOf: [ref("duration"), ref("expression")] },
  integerOrExpression: { anyOf: [{ type: "integer", minimum: 0 }, ref("expression")] },
  numberOrExpression: { anyOf: [{ type: "number" }, ref("expression")] },
  booleanOrExpression: { anyOf: [{ type: "boolean" }, ref("expression")] },
  mappingOrExpression: { anyOf: [{ type: "object" }, ref("expression")] },
  listOrExpression: { anyOf: [{ type: "array" }, ref("expression")] },
  taskId: {
    description: "A task id: a letter or _, then letters, digits, _ and -.",
    type: "string",
    pattern: TASK_ID_PATTERN,
  },
  loadBalancing: {
    description:
      "How calls are spread over the instances of a service: round_robin (default) or least_pending (fewest calls in flight).",
    enum: [...LOAD_BALANCING],
  },
  circuitBreaker: {
    description: "Circuit breaker per instance.",
    type: "object",
    additionalProperties: false,
    properties: {
      max_failures: {
        description: "Consecutive failures that open the circuit (default 5).",
        type: "integer",
        minimum: 1,
      },
      open_for: {
        description:
          "How long an open circuit stays open before one probe call is let through (default 30s).",
        ...ref("duration"),
      },
    },
  },
  endpoint: {
    description:
      'Base URL of the instance (http:// or https://, may carry a path prefix), or "embedded" for an in-process reference agent server.',
    type: "string",
    pattern: "^(?:embedded|https?://\\S+)$",
  },
  instance: {
    description: "One instance of a service.",
    type: "object",
    additionalProperties: false,
    required: ["endpoint"],
    properties: {
      id: {
        description: 'Instance id, unique across all services (default "<service>-<n>", n from 1).',
        type: "string",
        minLength: 1,
      },
      endpoint: ref("endpoint"),
      agents: {
        description: "Agents this instance serves; omitted = any agent.",
        type: "array",
        items: { type: "string", minLength: 1 },
      },
      metadata: { description: "Free-form metadata about the instance.", type: "object" },
    },
  },
  service: {
    description: "An agent service and its instances (which may come from etcd instead, with --registry).",
    type: "object",
    additionalProperties: false,
    properties: {
      headers: {
        description:
          "HTTP headers sent on every call to this service; values may hold ${{ env.NAME }}. Header values are secrets.",
        type: "object",
        propertyNames: { type: "string", pattern: HEADER_NAME_PATTERN },
        additionalProperties: { type: "string", pattern: "^[^\\r\\n\\u0000]*$" },
      },
      load_balancing: ref("loadBalancing"),
      circuit_breaker: ref("circuitBreaker"),
      timeout: { description: "Timeout of one attempt against this service.", ...ref("duration") },
      max_response_bytes: {
        description: "Largest response body accepted (default 16 MiB).",
        type: "integer",
        minimum: 1,
      },
      instances: {
        description: "The instances of the service (at least one).",
        type: "array",
        minItems: 1,
        items: ref("instance"),
      },
    },
  },
  services: {
    description: "Services by name.",
    type: "object",
    propertyNames: { type: "string", pattern: SERVICE_NAME_PATTERN },
    additionalProperties: ref("service"),
  },
  agentOptions: {
    description: "AgentInput options (sent to the agent as they are, timeout as nanoseconds).",
    type: "object",
    additionalProperties: false,
    properties: {
      temperature: ref("numberOrExpression"),
      max_tokens: ref("integerOrExpression"),
      model: { type: "string" },
      enable_tools: ref("booleanOrExpression"),
      allowed_tools: {
        anyOf: [{ type: "array", items: { type: "string" } }, ref("expression")],
      },
      max_tool_calls: ref("integerOrExpression"),
      enable_memory: ref("booleanOrExpression"),
      load_history: ref("booleanOrExpression"),
      save_to_memory: ref("booleanOrExpression"),
      max_history_length: ref("integerOrExpression"),
      timeout: {
        description: 'Timeout the agent should keep to ("20s"); sent as integer nanoseconds.',
        ...ref("durationOrExpression"),
      },
    },
  },
  agentInput: {
    description: "The AgentInput sent to the agent; strings may hold ${{ }} expressions.",
    type: "object",
    additionalProperties: false,
    properties: {
      task: { description: "The task for the agent.", type: "string" },
      instruction: { description: "Instructions for the agent.", type: "string" },
      context: { description: "Free-form context object.", ...ref("mappingOrExpression") },
      options: {
        description: "Agent options.",
        anyOf: [ref("agentOptions"), ref("expression")],
      },
      session_id: { description: "Session id (default: the run id).", type: "string" },
      timestamp: {
        description: "RFC 3339 time (default: the time of the attempt).",
        type: "string",
      },
    },
  },
  task: {
    description: "One agent call (or one per item with for_each).",
    type: "object",
    additionalProperties: false,
    required: ["id", "service", "agent"],
    properties: {
      id: { description: "Unique task id.", ...ref("taskId") },
      service: { description: "The service to call (a key of services).", type: "string", minLength: 1 },
      agent: { description: "The agent to run on the service.", type: "string", minLength: 1 },
      needs: {
        description: "Tasks that must succeed before this one starts.",
        type: "array",
        items: ref("taskId"),
      },
      input: ref("agentInput"),
      for_each: {
        description:
          "A list, or one ${{ }} expression giving a list: the task makes one call per item (item and index are in scope).",
        ...ref("listOrExpression"),
      },
      async: {
        description: "Use execute/async and poll for the result.",
        type: "boolean",
      },
      poll_interval: { description: "How often an async task is polled (default 1s).", ...ref("duration") },
      timeout: { description: "Timeout of one attempt.", ...ref("duration") },
      retries: { description: "Further attempts after a retryable failure.", type: "integer", minimum: 0 },
      expect: {
        description:
          'Checks on each output: dotted paths into the AgentOutput (status, result.words, …) mapped to the expected value; a "/regex/" string matches a string value.',
        type: "object",
        properties: {
          status: {
            anyOf: [{ enum: [...OUTPUT_STATUSES] }, { type: "string", pattern: "^/.*/[a-z]*$" }],
          },
        },
      },
    },
  },
};

/** JSON Schema of pipeline files (`agentctl schema`, `schema/pipeline.schema.json`). */
export const pipelineSchema: JsonSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "urn:agentctl:schema:pipeline",
  title: "agentctl pipeline",
  description: "A pipeline of agent calls run by agentctl.",
  type: "object",
  additionalProperties: false,
  required: ["name", "tasks"],
  properties: {
    name: { description: "Name of the pipeline.", type: "string", minLength: 1 },
    services: {
      description:
        "A services file (path relative to this file), or the services inline: the mapping a services file has under services:.",
      anyOf: [{ type: "string", minLength: 1 }, ref("services")],
    },
    mode: {
      description:
        "parallel (default): tasks start when their needs succeeded. sequential: tasks run in file order, each gets context.previous_output.",
      enum: [...MODES],
    },
    concurrency: { description: "Most agent calls in flight (default 16).", type: "integer", minimum: 1 },
    timeout: { description: "Timeout of one attempt (default 60s).", ...ref("duration") },
    retries: {
      description: "Further attempts after a retryable failure (default 2).",
      type: "integer",
      minimum: 0,
    },
    circuit_breaker: { description: "Defaults for every service.", ...ref("circuitBreaker") },
    load_balancing: ref("loadBalancing"),
    max_response_bytes: {
      description: "Largest response body accepted (default 16 MiB).",
      type: "integer",
      minimum: 1,
    },
    vars: {
      description: "Variables for ${{ vars.NAME }}; --var NAME=VALUE overrides them.",
      type: "object",
    },
    tasks: { description: "The tasks.", type: "array", items: ref("task") },
  },
  $defs: defs,
};

/** JSON Schema of services files. */
export const servicesFileSchema: JsonSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "urn:agentctl:schema:services",
  title: "agentctl services",
  description: "The instances of agent services.",
  type: "object",
  additionalProperties: false,
  required: ["services"],
  properties: { services: ref("services") },
  $defs: defs,
};

/**
 * Definitions checked as one unit, with the phrase their errors use
 * (`expected a duration like "30s", got "3x"`).
 */
export const schemaPhrases: Readonly<Record<string, string>> = {
  duration: 'a duration like "30s"',
  expression: "a ${{ }} expression",
  durationOrExpression: 'a duration like "30s" or a ${{ }} expression',
  integerOrExpression: "a non-negative integer or a ${{ }} expression",
  numberOrExpression: "a number or a ${{ }} expression",
  booleanOrExpression: "true, false or a ${{ }} expression",
  mappingOrExpression: "a mapping or a ${{ }} expression",
  listOrExpression: "a list or a ${{ }} expression",
  taskId: 'a task id (a letter or "_", then letters, digits, "_" or "-")',
  endpoint: 'an http:// or https:// URL or "embedded"',
};

/** The pipeline schema as the JSON text of `schema/pipeline.schema.json` (2-space indent, final newline). */
export function pipelineSchemaJson(): string {
  return `${JSON.stringify(pipelineSchema, null, 2)}\n`;
}

/** The services file schema as JSON text. */
export function servicesSchemaJson(): string {
  return `${JSON.stringify(servicesFileSchema, null, 2)}\n`;
}
