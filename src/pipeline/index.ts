/** The file layer: pipeline and services files → validated, typed configuration; expressions; plans. */

export { formatDiagnostic, MAX_DIAGNOSTICS } from "./diagnostics.js";
export {
  DURATION_PATTERN,
  durationProblem,
  durationToNanoseconds,
  formatDuration,
  MAX_DURATION_MS,
  parseDuration,
} from "./duration.js";
export {
  checkExpectations,
  deepEqual,
  type ExpectProblem,
  expectationProblems,
  isRegexLiteral,
  OUTPUT_FIELDS,
  parseRegexLiteral,
} from "./expect.js";
export {
  type EvaluateResult,
  EXPRESSION_ROOTS,
  type Expression,
  type ExpressionRoot,
  evaluateString,
  evaluateTemplate,
  findExpressions,
  formatPath,
  hasExpression,
  type ParsedTemplate,
  type PathSegment,
  parsePath,
  parseTemplate,
  referencedTasks,
  resolveExpression,
  type TemplateError,
  type TemplatePart,
  type TemplateScope,
  type TemplateSite,
  toText,
} from "./expressions.js";
export { type LoadOptions, loadPipeline, parsePipeline } from "./loader.js";
export {
  describePlan,
  effectiveNeeds,
  findCycle,
  type Plan,
  type PlanStep,
  planPipeline,
} from "./planner.js";
export {
  pipelineSchema,
  pipelineSchemaJson,
  schemaPhrases,
  servicesFileSchema,
  servicesSchemaJson,
  TASK_ID_PATTERN,
} from "./schema.js";
export { loadServices, parseServices, type ServicesOptions } from "./services-file.js";
export type {
  CircuitBreakerSettings,
  Diagnostic,
  InstanceConfig,
  LoadBalancing,
  PipelineConfig,
  PipelineLoadResult,
  PipelineMode,
  ServiceConfig,
  ServicesConfig,
  ServicesLoadResult,
  TaskConfig,
} from "./types.js";
export {
  describeSchema,
  type JsonPath,
  type JsonSchema,
  type SchemaError,
  SUPPORTED_KEYWORDS,
  type ValidateOptions,
  validateSchema,
} from "./validate-schema.js";
export { MAX_DEPTH, MAX_FILE_BYTES, MAX_YAML_TOKENS, parseYaml, YamlSource } from "./yaml-source.js";
