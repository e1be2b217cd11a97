/**
 * A small, fast interpreter for exactly the subset of JSON Schema that `schema.ts` uses, so the
 * CLI does not load a general validator at startup. Every problem is returned at once, each with
 * the JSON path (keys and list indexes) of the value it is about.
 *
 * Supported keywords: `$ref` (to `#/$defs/NAME`), `type` (one or a list), `properties`,
 * `required`, `additionalProperties` (false or a schema), `propertyNames`, `items`, `minItems`,
 * `enum`, `const`, `pattern`, `minLength`, `maxLength`, `minimum`, `maximum`, `anyOf`.
 * Annotations (`$schema`, `$id`, `$defs`, `title`, `description`, `default`, `examples`) are ignored.
 */
import { didYouMean, quote, showValue } from "./text.js";

export type JsonType = "string" | "number" | "integer" | "boolean" | "object" | "array" | "null";

export interface JsonSchema {
  $schema?: string;
  $id?: string;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  title?: string;
  description?: string;
  default?: unknown;
  examples?: unknown[];
  type?: JsonType | JsonType[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  anyOf?: JsonSchema[];
}

/** Every keyword the validator understands (validating keywords and ignored annotations). */
export const SUPPORTED_KEYWORDS: readonly string[] = [
  "$schema",
  "$id",
  "$ref",
  "$defs",
  "title",
  "description",
  "default",
  "examples",
  "type",
  "properties",
  "required",
  "additionalProperties",
  "propertyNames",
  "items",
  "minItems",
  "enum",
  "const",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "anyOf",
];

export type JsonPath = (string | number)[];

export interface SchemaError {
  path: JsonPath;
  message: string;
  /** The problem is the key at `path` itself (an unknown or badly named key), not its value. */
  atKey?: boolean;
}

export interface ValidateOptions {
  /** The schema `$ref`s resolve against (default: the schema being validated). */
  root?: JsonSchema;
  /**
   * `$defs` names validated as one unit: when the value does not fit, the error is
   * `expected <phrase>, got <value>` rather than the details of each alternative.
   */
  phrases?: Readonly<Record<string, string>>;
  /** Stop after this many errors (default 1000). */
  maxErrors?: number;
}

interface Ctx {
  root: JsonSchema;
  phrases: Readonly<Record<string, string>>;
  /** "Did you mean" suggestions left to compute (bounded work for hostile documents). */
  suggestions: number;
}

/** All the ways `value` does not match `schema`. An empty list means it matches. */
export function validateSchema(
  schema: JsonSchema,
  value: unknown,
  options: ValidateOptions = {},
): SchemaError[] {
  const ctx: Ctx = { root: options.root ?? schema, phrases: options.phrases ?? {}, suggestions: 200 };
  const errors = check(ctx, schema, value, []);
  const max = options.maxErrors ?? 1000;
  return errors.length > max ? errors.slice(0, max) : errors;
}

function check(ctx: Ctx, schema: JsonSchema, value: unknown, path: JsonPath): SchemaError[] {
  if (schema.$ref !== undefined) {
    const name = defName(schema.$ref);
    const target = resolveRef(ctx, schema.$ref);
    const errors = check(ctx, target, value, path);
    const phrase = name === undefined ? undefined : own(ctx.phrases, name);
    if (errors.length > 0 && phrase !== undefined) {
      return [{ path, message: `expected ${phrase}, got ${showValue(value)}` }];
    }
    return errors;
  }

  if (schema.anyOf !== undefined) {
    const results = schema.anyOf.map((branch) => check(ctx, branch, value, path));
    if (results.some((r) => r.length === 0)) return [];
    const fitting = schema.anyOf.flatMap((branch, i) => (accepts(ctx, branch, value) ? [i] : []));
    if (fitting.length === 1) return results[fitting[0] ?? 0] ?? [];
    return [{ path, message: `expected ${describe(ctx, schema)}, got ${showValue(value)}` }];
  }

  if (schema.type !== undefined && !typeMatches(schema.type, value)) {
    return [{ path, message: `expected ${describe(ctx, schema)}, got ${showValue(value)}` }];
  }

  if (schema.const !== undefined && value !== schema.const) {
    return [{ path, message: `expected ${describe(ctx, schema)}, got ${showValue(value)}` }];
  }

  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    const hint =
      typeof value === "string"
        ? didYouMean(
            value,
            schema.enum.filter((e): e is string => typeof e === "string"),
          )
        : "";
    return [{ path, message: `expected ${describeEnum(schema.enum)}, got ${showValue(value)}${hint}` }];
  }

  const errors: SchemaError[] = [];
  if (typeof value === "string") {
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      errors.push({
        path,
        message:
          schema.minLength === 1
            ? "expected a non-empty string"
            : `expected at least ${schema.minLength} characters, got ${value.length}`,
      });
    } else if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      errors.push({ path, message: `expected at most ${schema.maxLength} characters, got ${value.length}` });
    } else if (schema.pattern !== undefined && !patternOf(schema.pattern).test(value)) {
      errors.push({ path, message: `expected ${describe(ctx, schema)}, got ${showValue(value)}` });
    }
  } else if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum) {
      errors.push({ path, message: `expected ${describe(ctx, schema)}, got ${showValue(value)}` });
    } else if (schema.maximum !== undefined && value > schema.maximum) {
      errors.push({ path, message: `expected ${describe(ctx, schema)}, got ${showValue(value)}` });
    }
  } else if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      errors.push({
        path,
        message:
          schema.minItems === 1
            ? "expected a non-empty list"
            : `expected at least ${schema.minItems} items, got ${value.length}`,
      });
    }
    if (schema.items !== undefined) {
      for (let i = 0; i < value.length; i++) errors.push(...check(ctx, schema.items, value[i], [...path, i]));
    }
  } else if (isObject(value)) {
    checkObject(ctx, schema, value, path, errors);
  }
  return errors;
}

function checkObject(
  ctx: Ctx,
  schema: JsonSchema,
  value: Record<string, unknown>,
  path: JsonPath,
  errors: SchemaError[],
): void {
  for (const key of schema.required ?? []) {
    if (!Object.hasOwn(value, key)) errors.push({ path, message: `missing required key ${quote(key)}` });
  }
  const properties = schema.properties ?? {};
  for (const key of Object.keys(value)) {
    const child = value[key];
    const childPath = [...path, key];
    if (schema.propertyNames !== undefined && check(ctx, schema.propertyNames, key, childPath).length > 0) {
      errors.push({
        path: childPath,
        atKey: true,
        message: `invalid key ${quote(key)}: expected ${describe(ctx, schema.propertyNames)}`,
      });
      continue;
    }
    const propertySchema = own(properties, key);
    if (propertySchema !== undefined) {
      errors.push(...check(ctx, propertySchema, child, childPath));
    } else if (schema.additionalProperties === false) {
      errors.push({
        path: childPath,
        atKey: true,
        message: `unknown key ${quote(key)}${--ctx.suggestions >= 0 ? didYouMean(key, Object.keys(properties)) : ""}`,
      });
    } else if (typeof schema.additionalProperties === "object") {
      errors.push(...check(ctx, schema.additionalProperties, child, childPath));
    }
  }
}

/** Whether the value's kind (string, number, list, mapping…) is one `schema` is about. */
function accepts(ctx: Ctx, schema: JsonSchema, value: unknown): boolean {
  if (schema.$ref !== undefined) return accepts(ctx, resolveRef(ctx, schema.$ref), value);
  if (schema.anyOf !== undefined) return schema.anyOf.some((b) => accepts(ctx, b, value));
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const kind = kindOf(value);
    return types.some((t) => t === kind || (t === "integer" && kind === "number"));
  }
  if (schema.enum !== undefined) return schema.enum.some((e) => kindOf(e) === kindOf(value));
  if (schema.const !== undefined) return kindOf(schema.const) === kindOf(value);
  return true;
}

function typeMatches(type: JsonType | JsonType[], value: unknown): boolean {
  const types = Array.isArray(type) ? type : [type];
  return types.some((t) => {
    switch (t) {
      case "string":
        return typeof value === "string";
      case "number":
        return typeof value === "number" && Number.isFinite(value);
      case "integer":
        return typeof value === "number" && Number.isInteger(value);
      case "boolean":
        return typeof value === "boolean";
      case "null":
        return value === null;
      case "array":
        return Array.isArray(value);
      case "object":
        return isObject(value);
      default:
        return false;
    }
  });
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** A human phrase for what `schema` expects: `a string`, `a duration like "30s"`, `one of "a", "b"`. */
export function describeSchema(schema: JsonSchema, options: ValidateOptions = {}): string {
  return describe({ root: options.root ?? schema, phrases: options.phrases ?? {}, suggestions: 0 }, schema);
}

function describe(ctx: Ctx, schema: JsonSchema): string {
  if (schema.$ref !== undefined) {
    const name = defName(schema.$ref);
    const phrase = name === undefined ? undefined : own(ctx.phrases, name);
    return phrase ?? describe(ctx, resolveRef(ctx, schema.$ref));
  }
  if (schema.anyOf !== undefined) {
    const parts = [...new Set(schema.anyOf.map((b) => describe(ctx, b)))];
    return parts.length <= 1
      ? (parts[0] ?? "anything")
      : `${parts.slice(0, -1).join(", ")} or ${parts.at(-1)}`;
  }
  if (schema.enum !== undefined) return describeEnum(schema.enum);
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  const words = types.map((t) => {
    switch (t) {
      case "integer":
        if (schema.minimum !== undefined) return `an integer of at least ${schema.minimum}`;
        return "an integer";
      case "number":
        if (schema.minimum !== undefined) return `a number of at least ${schema.minimum}`;
        return "a number";
      case "string":
        if (schema.pattern !== undefined) return `a string matching /${schema.pattern}/`;
        return schema.minLength === 1 ? "a non-empty string" : "a string";
      case "boolean":
        return "true or false";
      case "object":
        return "a mapping";
      case "array":
        return "a list";
      default:
        return t;
    }
  });
  if (words.length === 0) return "anything";
  return words.length === 1 ? (words[0] ?? "") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

function describeEnum(values: readonly unknown[]): string {
  const shown = values.map((v) => JSON.stringify(v));
  return shown.length === 1 ? (shown[0] ?? "") : `one of ${shown.join(", ")}`;
}

function defName(ref: string): string | undefined {
  return ref.startsWith("#/$defs/") ? ref.slice("#/$defs/".length) : undefined;
}

function resolveRef(ctx: Ctx, ref: string): JsonSchema {
  const name = defName(ref);
  const target = name === undefined || ctx.root.$defs === undefined ? undefined : own(ctx.root.$defs, name);
  if (target === undefined) throw new Error(`schema error: cannot resolve $ref ${ref}`);
  return target;
}

const patterns = new Map<string, RegExp>();

function patternOf(source: string): RegExp {
  let re = patterns.get(source);
  if (re === undefined) {
    re = new RegExp(source, "u");
    patterns.set(source, re);
  }
  return re;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
