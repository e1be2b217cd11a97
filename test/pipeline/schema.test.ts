// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
import { describe, expect, it } from "vitest";
import {
  pipelineSchema,
  pipelineSchemaJson,
  schemaPhrases,
  servicesFileSchema,
} from "../../src/pipeline/schema.js";
import { type JsonSchema, SUPPORTED_KEYWORDS, validateSchema } from "../../src/pipeline/validate-schema.js";

const validate = (value: unknown, schema: JsonSchema = pipelineSchema) =>
  validateSchema(schema, value, { phrases: schemaPhrases });

/** Every (sub)schema of a schema, with where it is. */
function* subschemas(schema: JsonSchema, at = "#"): Generator<[string, JsonSchema]> {
  yield [at, schema];
  for (const [k, v] of Object.entries(schema.properties ?? {})) yield* subschemas(v, `${at}/properties/${k}`);
  for (const [k, v] of Object.entries(schema.$defs ?? {})) yield* subschemas(v, `${at}/$defs/${k}`);
  if (typeof schema.additionalProperties === "object") {
    yield* subschemas(schema.additionalProperties, `${at}/additionalProperties`);
  }
  if (schema.propertyNames) yield* subschemas(schema.propertyNames, `${at}/propertyNames`);
  if (schema.items) yield* subschemas(schema.items, `${at}/items`);
  for (const [i, v] of (schema.anyOf ?? []).entries()) yield* subschemas(v, `${at}/anyOf/${i}`);
}

const minimal = { name: "p", tasks: [{ id: "a", service: "s", agent: "A" }] };

describe("pipelineSchema", () => {
  it("uses only keywords the validator interprets", () => {
    for (const schema of [pipelineSchema, servicesFileSchema]) {
      for (const [at, sub] of subschemas(schema)) {
        for (const keyword of Object.keys(sub))
          expect(SUPPORTED_KEYWORDS, `${at}: ${keyword}`).toContain(keyword);
      }
    }
  });

  it("is a well-formed draft 2020-12 schema", () => {
    expect(pipelineSchema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    const types = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);
    for (const [at, sub] of subschemas(pipelineSchema)) {
      if (sub.$ref !== undefined) {
        expect(sub.$ref, at).toMatch(/^#\/\$defs\//);
        expect(pipelineSchema.$defs?.[sub.$ref.slice(8)], `${at} → ${sub.$ref}`).toBeDefined();
      }
      for (const t of [sub.type ?? []].flat()) expect(types.has(t), `${at}: type ${t}`).toBe(true);
      if (sub.pattern !== undefined) expect(() => new RegExp(sub.pattern ?? "", "u"), at).not.toThrow();
      if (sub.required !== undefined) {
        for (const key of sub.required) expect(sub.properties?.[key], `${at}: required ${key}`).toBeDefined();
      }
      if (sub.enum !== undefined) expect(sub.enum.length, at).toBeGreaterThan(0);
    }
    for (const name of Object.keys(schemaPhrases)) expect(pipelineSchema.$defs?.[name], name).toBeDefined();
  });

  it("describes every property for editors", () => {
    for (const [at, sub] of subschemas(pipelineSchema)) {
      for (const [key, prop] of Object.entries(sub.properties ?? {})) {
        const described =
          prop.description !== undefined ||
          (prop.$ref !== undefined &&
            pipelineSchema.$defs?.[prop.$ref.slice(8)]?.description !== undefined) ||
          at.includes("agentOptions") ||
          at.includes("/expect");
        expect(described, `${at}/properties/${key}`).toBe(true);
      }
    }
  });

  it("prints as JSON that parses back to the schema", () => {
    const text = pipelineSchemaJson();
    expect(text.endsWith("}\n")).toBe(true);
    expect(JSON.parse(text)).toEqual(pipelineSchema);
  });
});

describe("validateSchema", () => {
  it("accepts a minimal and a full pipeline", () => {
    expect(validate(minimal)).toEqual([]);
    expect(
      validate({
        name: "p",
        services: { s: { headers: { "x-a": "b" }, instances: [{ endpoint: "embedded" }] } },
        mode: "sequential",
        concurrency: 2,
        timeout: "1m30s",
        retries: 0,
        circuit_breaker: { max_failures: 1, open_for: 1000 },
        load_balancing: "least_pending",
        max_response_bytes: 10,
        vars: { a: [1] },
        tasks: [
          {
            id: "_a-1",
            service: "s",
            agent: "A",
            needs: [],
            input: {
              task: "t",
              instruction: "i",
              context: "${{ vars.a }}",
              options: {
                temperature: 0.5,
                max_tokens: "${{ vars.n }}",
                model: "m",
                enable_tools: true,
                allowed_tools: ["x"],
                max_tool_calls: 3,
                enable_memory: false,
                load_history: "${{ vars.b }}",
                save_to_memory: true,
                max_history_length: 10,
                timeout: "20s",
              },
              session_id: "s",
              timestamp: "2024-01-01T00:00:00Z",
            },
            for_each: [1, 2],
            async: true,
            poll_interval: "250ms",
            timeout: 500,
            retries: 3,
            expect: { status: "success", "result.words": 3, message: "/ok/i" },
          },
        ],
      }),
    ).toEqual([]);
  });

  it("reports every problem with its path", () => {
    expect(
      validate({
        name: "",
        mode: "paralel",
        timeout: "3x",
        retires: 2,
        tasks: [{ id: "1a", service: "s", agnet: "A", timeout: -1, input: { options: { max_tokens: 1.5 } } }],
      }),
    ).toEqual([
      { path: ["name"], message: "expected a non-empty string" },
      {
        path: ["mode"],
        message: 'expected one of "parallel", "sequential", got "paralel" (did you mean "parallel"?)',
      },
      { path: ["timeout"], message: 'expected a duration like "30s", got "3x"' },
      { path: ["retires"], atKey: true, message: 'unknown key "retires" (did you mean "retries"?)' },
      { path: ["tasks", 0], message: 'missing required key "agent"' },
      {
        path: ["tasks", 0, "id"],
        message: 'expected a task id (a letter or "_", then letters, digits, "_" or "-"), got "1a"',
      },
      { path: ["tasks", 0, "agnet"], atKey: true, message: 'unknown key "agnet" (did you mean "agent"?)' },
      { path: ["tasks", 0, "timeout"], message: 'expected a duration like "30s", got -1' },
      {
        path: ["tasks", 0, "input", "options", "max_tokens"],
        message: "expected a non-negative integer or a ${{ }} expression, got 1.5",
      },
    ]);
  });

  it("explains type mismatches in YAML words", () => {
    expect(validate({ name: ["x"], tasks: {} })).toEqual([
      { path: ["name"], message: "expected a non-empty string, got a list" },
      { path: ["tasks"], message: "expected a list, got a mapping" },
    ]);
    expect(validate("hello")).toEqual([{ path: [], message: 'expected a mapping, got "hello"' }]);
    expect(validate({ ...minimal, concurrency: 0 })).toEqual([
      { path: ["concurrency"], message: "expected an integer of at least 1, got 0" },
    ]);
    expect(validate({ ...minimal, concurrency: Number.POSITIVE_INFINITY })[0]?.message).toBe(
      "expected an integer of at least 1, got .inf",
    );
  });

  it("goes into the alternative that fits the value's kind", () => {
    // `services` is a path or a mapping: a mapping's problems are reported in detail.
    expect(validate({ ...minimal, services: { s: { instances: [] } } })).toEqual([
      { path: ["services", "s", "instances"], message: "expected a non-empty list" },
    ]);
    expect(validate({ ...minimal, services: { "a/b": { instances: [{ endpoint: "http://x" }] } } })).toEqual([
      {
        path: ["services", "a/b"],
        atKey: true,
        message: 'invalid key "a/b": expected a string matching /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/',
      },
    ]);
    expect(validate({ ...minimal, services: 3 })).toEqual([
      { path: ["services"], message: "expected a non-empty string or a mapping, got 3" },
    ]);
  });

  it("never takes inherited names for declared properties", () => {
    const doc = JSON.parse('{"name": "p", "tasks": [], "constructor": 1, "__proto__": 2, "toString": 3}');
    expect(validate(doc).map((e) => e.message)).toEqual([
      'unknown key "constructor"',
      'unknown key "__proto__"',
      'unknown key "toString"',
    ]);
  });

  it("checks services files", () => {
    expect(
      validate({ services: { s: { instances: [{ endpoint: "embedded" }] } } }, servicesFileSchema),
    ).toEqual([]);
    expect(
      validate(
        {
          services: {
            s: { instances: [{ endpoint: "tcp://x", agents: [""], id: "" }], headers: { "a b": "x" } },
          },
        },
        servicesFileSchema,
      ),
    ).toEqual([
      {
        path: ["services", "s", "instances", 0, "endpoint"],
        message: 'expected an http:// or https:// URL or "embedded", got "tcp://x"',
      },
      { path: ["services", "s", "instances", 0, "agents", 0], message: "expected a non-empty string" },
      { path: ["services", "s", "instances", 0, "id"], message: "expected a non-empty string" },
      {
        path: ["services", "s", "headers", "a b"],
        atKey: true,
        message: 'invalid key "a b": expected a string matching /^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$/',
      },
    ]);
    expect(validate({}, servicesFileSchema)).toEqual([
      { path: [], message: 'missing required key "services"' },
    ]);
  });

  it("stops after maxErrors", () => {
    const doc = { name: "p", tasks: Array.from({ length: 50 }, () => ({})) };
    expect(validateSchema(pipelineSchema, doc, { maxErrors: 10 })).toHaveLength(10);
  });
});
