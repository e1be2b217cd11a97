import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { pipelineSchemaJson } from "../../src/pipeline/schema.js";

describe("the shipped JSON Schema", () => {
  it("schema/pipeline.schema.json is what `agentctl schema` prints (one source of truth)", () => {
    const shipped = readFileSync(new URL("../../schema/pipeline.schema.json", import.meta.url), "utf8");
    expect(shipped.trimEnd()).toBe(pipelineSchemaJson().trimEnd());
  });

  it("the example pipelines name it for yaml-language-server", () => {
    const demo = readFileSync(new URL("../../pipelines/demo.yaml", import.meta.url), "utf8");
    expect(demo.split("\n")[0]).toBe("# yaml-language-server: $schema=../schema/pipeline.schema.json");
  });
});
