/**
 * AgentInput encoding and AgentOutput decoding (SPEC §2): the exact types a Go server decodes,
 * checked in the raw request body a server received, and lenient decoding of what Go sends.
 */
import { describe, expect, it } from "vitest";
import { decodeOutput, encodeInput } from "../../src/index.js";
import { startAgentServer } from "../../src/server/index.js";
import { agentOutput } from "../helpers/fake-agent-server.js";
import { rejection, useResources } from "./util.js";

const r = useResources();
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

async function sent(input: Parameters<typeof encodeInput>[0]) {
  const server = await r.server();
  await r.client().executeAgent(server.url, "echo", input);
  return server.requests[0]!;
}

describe("AgentInput on the wire", () => {
  it("field names exactly as goagent's, options.timeout as integer nanoseconds", async () => {
    const req = await sent({
      task: "t",
      instruction: "i",
      context: { k: [1, 2] },
      session_id: "run-1",
      options: {
        temperature: 0.2,
        max_tokens: 256,
        model: "m",
        enable_tools: true,
        allowed_tools: ["a"],
        max_tool_calls: 3,
        enable_memory: false,
        load_history: true,
        save_to_memory: false,
        max_history_length: 10,
        timeout: 30_000_000_000,
      },
    });
    const body = req.json as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(
      ["context", "instruction", "options", "session_id", "task", "timestamp"].sort(),
    );
    expect(req.body).toContain('"timeout":30000000000');
    expect(req.body).toContain('"max_tokens":256');
    expect(req.body).toContain('"temperature":0.2');
    expect(req.body).not.toMatch(/e\+/i);
    expect(body.options).toMatchObject({ enable_tools: true, allowed_tools: ["a"], model: "m" });
  });

  it("numeric and boolean strings are converted; integers are plain digits", async () => {
    const req = await sent({
      task: "t",
      options: {
        max_tokens: "512" as never,
        max_tool_calls: " 4 " as never,
        max_history_length: "0" as never,
        timeout: "3600000000000" as never,
        temperature: "0.7" as never,
        enable_tools: "true" as never,
        enable_memory: "false" as never,
        load_history: "true" as never,
        save_to_memory: "false" as never,
        model: 4 as never,
      },
    });
    expect(req.body).toContain('"timeout":3600000000000');
    expect(req.body).toContain('"max_tokens":512');
    expect(req.body).toContain('"max_tool_calls":4');
    expect(req.body).toContain('"max_history_length":0');
    expect(req.body).toContain('"temperature":0.7');
    expect(req.body).toContain('"enable_tools":true');
    expect(req.body).toContain('"enable_memory":false');
    expect(req.body).toContain('"model":"4"');
  });

  it("a timestamp is always a valid RFC 3339 time: the attempt's when absent or empty", async () => {
    const before = Date.now();
    for (const timestamp of [undefined, "", "   ", "not a time"]) {
      const req = await sent({ task: "t", ...(timestamp === undefined ? {} : { timestamp }) });
      const ts = (req.json as { timestamp: string }).timestamp;
      expect(ts).toMatch(RFC3339);
      expect(Date.parse(ts)).toBeGreaterThanOrEqual(before - 1000);
      expect(Date.parse(ts)).toBeLessThanOrEqual(Date.now() + 1000);
    }
  });

  it("a given RFC 3339 timestamp is kept as is", async () => {
    for (const ts of [
      "2024-01-02T03:04:05Z",
      "2024-01-02T03:04:05.123456789+02:00",
      "1999-12-31T23:59:59-08:00",
    ]) {
      const req = await sent({ task: "t", timestamp: ts });
      expect((req.json as { timestamp: string }).timestamp).toBe(ts);
    }
  });

  it("a given time in another format is sent in RFC 3339 (Go would reject it)", async () => {
    const cases: Array<[string, number]> = [
      ["2024-01-02", Date.UTC(2024, 0, 2)],
      ["Tue, 02 Jan 2024 03:04:05 GMT", Date.UTC(2024, 0, 2, 3, 4, 5)],
    ];
    for (const [given, at] of cases) {
      const ts = encodeInput({ timestamp: given }).timestamp as string;
      expect(ts).toMatch(RFC3339);
      expect(Date.parse(ts)).toBe(at);
    }
    // Out of range for Go's decoder although JavaScript's parser rolls it over.
    expect(encodeInput({ timestamp: "2024-02-30T00:00:00Z" }).timestamp).toMatch(RFC3339);
    expect(encodeInput({ timestamp: "2024-02-30T00:00:00Z" }).timestamp).not.toBe("2024-02-30T00:00:00Z");
  });

  it("the reference server (strict like Go) accepts every timestamp agentctl sends", async () => {
    const server = await startAgentServer({ port: 0 });
    r.defer(() => server.close());
    const client = r.client();
    for (const timestamp of [
      undefined,
      "",
      "2024-01-02",
      "Tue, 02 Jan 2024 03:04:05 GMT",
      "2024-01-02T03:04:05Z",
    ]) {
      const output = await client.executeAgent(server.url, "echo", { task: "t", timestamp });
      expect(output.status).toBe("success");
    }
  });

  it("a timestamp checked before is kept; an invalid one after a valid one is still replaced", () => {
    const now = new Date("2026-01-02T03:04:05.000Z");
    const valid = "2025-06-30T23:59:59.5+02:00";
    for (const [given, sent] of [
      [valid, valid],
      [valid, valid],
      ["2025-13-01T00:00:00Z", now.toISOString()], // no 13th month
      ["", now.toISOString()],
      [valid, valid],
    ] as const) {
      expect(encodeInput({ task: "t", timestamp: given }, now).timestamp).toBe(sent);
    }
  });

  it("encodeInput does not change the caller's input", () => {
    const input = { task: "t", options: { max_tokens: "5" as never } };
    const out = encodeInput(input, new Date(0));
    expect(out.options!.max_tokens).toBe(5);
    expect(out.timestamp).toBe("1970-01-01T00:00:00.000Z");
    expect(input.options.max_tokens).toBe("5");
    expect("timestamp" in input).toBe(false);
  });

  it("values that cannot be converted fail with template, before any request", async () => {
    const server = await r.server();
    const client = r.client();
    const bad = [
      { options: { max_tokens: "1.5" } },
      { options: { max_tokens: 2 ** 60 } },
      { options: { timeout: "1e9" } },
      { options: { temperature: "warm" } },
      { options: { enable_tools: 1 } },
      { options: { allowed_tools: "a,b" } },
      { options: "fast" },
      { context: "ctx" },
      { task: { nested: true } },
    ];
    for (const input of bad)
      await rejection(client.executeAgent(server.url, "echo", input as never), "invalid");
    expect(server.requests).toHaveLength(0);
  });
});

describe("AgentOutput decoding", () => {
  it("Go-style nulls become empty values; unknown fields are ignored", async () => {
    const server = await r.server();
    server.route(/execute$/, {
      body: JSON.stringify({
        result: null,
        status: "success",
        message: "ok",
        reasoning_steps: null,
        tool_calls: null,
        token_usage: null,
        latency: 1500000,
        timestamp: "2024-01-02T03:04:05Z",
        metadata: null,
        something_new: { x: 1 },
      }),
    });
    const output = await r.client().executeAgent(server.url, "echo", {});
    expect(output).toEqual({
      result: null,
      status: "success",
      message: "ok",
      reasoning_steps: [],
      tool_calls: [],
      latency: 1500000,
      timestamp: "2024-01-02T03:04:05Z",
      metadata: {},
    });
    expect("something_new" in output).toBe(false);
    expect("token_usage" in output).toBe(false);
  });

  it("missing fields take empty values; token usage and any result kept", () => {
    expect(decodeOutput({})).toEqual({
      result: null,
      status: "",
      message: "",
      reasoning_steps: [],
      tool_calls: [],
      latency: 0,
      timestamp: "",
      metadata: {},
    });
    const full = decodeOutput(
      agentOutput({
        result: { nested: [1, { a: null }] },
        token_usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
        reasoning_steps: [{ step: 1 }],
        tool_calls: [{ name: "x" }],
        latency: 12.9,
      }),
    );
    expect(full.result).toEqual({ nested: [1, { a: null }] });
    expect(full.token_usage).toEqual({ prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 });
    expect(full.reasoning_steps).toEqual([{ step: 1 }]);
    expect(full.tool_calls).toEqual([{ name: "x" }]);
    expect(full.latency).toBe(12);
  });

  it("wrongly typed fields are taken as empty rather than failing", () => {
    const out = decodeOutput({ status: 3, message: {}, reasoning_steps: {}, metadata: [1], latency: "5" });
    expect(out).toMatchObject({ status: "", message: "", reasoning_steps: [], metadata: {}, latency: 0 });
  });

  it("something that is not an object is bad_response", () => {
    for (const v of [null, [], "x", 1]) {
      expect(() => decodeOutput(v)).toThrowError(expect.objectContaining({ code: "bad_response" }));
    }
  });
});
