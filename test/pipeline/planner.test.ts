// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
import { describe, expect, it } from "vitest";
import { AgentctlError } from "../../src/errors.js";
import { describePlan, findCycle, planPipeline } from "../../src/pipeline/planner.js";
import type { PipelineMode, TaskConfig } from "../../src/pipeline/types.js";

const task = (id: string, needs: string[] = [], extra: Partial<TaskConfig> = {}): TaskConfig => ({
  id,
  service: "svc",
  agent: "A",
  needs,
  input: {},
  async: false,
  ...extra,
});
const pipeline = (tasks: TaskConfig[], mode: PipelineMode = "parallel") => ({ name: "p", mode, tasks });

describe("planPipeline", () => {
  it("orders a DAG by levels, in file order within a level", () => {
    const plan = planPipeline(
      pipeline([task("d", ["b", "c"]), task("b", ["a"]), task("a"), task("c", ["a"]), task("e")]),
    );
    expect(plan.levels).toEqual([["a", "e"], ["b", "c"], ["d"]]);
    expect(plan.order).toEqual(["a", "e", "b", "c", "d"]);
    expect(plan.steps.map((s) => s.id)).toEqual(["d", "b", "a", "c", "e"]);
    expect(plan.byId.get("a")?.dependents).toEqual(["b", "c"]);
    expect(plan.byId.get("d")?.level).toBe(2);
  });

  it("chains tasks in sequential mode", () => {
    const plan = planPipeline(pipeline([task("a"), task("b"), task("c", ["a"])], "sequential"));
    expect(plan.steps.map((s) => s.needs)).toEqual([[], ["a"], ["a", "b"]]);
    expect(plan.levels).toEqual([["a"], ["b"], ["c"]]);
  });

  it("rejects cycles, naming them", () => {
    const err = (() => {
      try {
        planPipeline(pipeline([task("a", ["c"]), task("b", ["a"]), task("c", ["b"]), task("d")]));
      } catch (e) {
        return e as AgentctlError;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(AgentctlError);
    expect(err?.code).toBe("invalid");
    expect(err?.message).toBe("dependency cycle: a → c → b → a");
    expect(() => planPipeline(pipeline([task("a", ["a"])]))).toThrow("dependency cycle: a → a");
    // A later need in sequential mode is a cycle with the implicit chain.
    expect(() => planPipeline(pipeline([task("a", ["b"]), task("b")], "sequential"))).toThrow(/cycle/);
  });

  it("rejects unknown needs and duplicate ids", () => {
    expect(() => planPipeline(pipeline([task("a", ["x"])]))).toThrow('task "a" needs unknown task "x"');
    expect(() => planPipeline(pipeline([task("a"), task("a")]))).toThrow('duplicate task id "a"');
  });

  it("handles long chains without recursion", () => {
    const tasks = Array.from({ length: 30_000 }, (_, i) => task(`t${i}`, i > 0 ? [`t${i - 1}`] : []));
    const plan = planPipeline(pipeline(tasks));
    expect(plan.levels).toHaveLength(30_000);
    expect(plan.order[29_999]).toBe("t29999");
  });
});

describe("findCycle", () => {
  it("returns a closed path or nothing", () => {
    const edges: Record<string, string[]> = { a: ["b"], b: ["c", "x"], c: ["a"], d: [] };
    expect(findCycle(["a", "b", "c", "d"], (id) => edges[id] ?? [])).toEqual(["a", "b", "c", "a"]);
    expect(findCycle(["d"], () => [])).toBeUndefined();
    const chain = Array.from({ length: 50_000 }, (_, i) => `n${i}`);
    expect(findCycle(chain, (id) => [`n${Number(id.slice(1)) + 1}`])).toBeUndefined();
    expect(findCycle(chain, (id) => [`n${(Number(id.slice(1)) + 1) % 50_000}`])).toHaveLength(50_001);
  });
});

describe("describePlan", () => {
  it("lists the order and the dependencies", () => {
    const plan = planPipeline(
      pipeline([
        task("get_user", [], { service: "user-service", agent: "GetUserAgent" }),
        task("orders", ["get_user"], { service: "order-service", agent: "GetUserOrdersAgent", retries: 1 }),
        task("summaries", ["orders"], {
          service: "demo",
          agent: "upper",
          forEach: "${{ tasks.orders.output.result }}",
          async: true,
          timeoutMs: 10_000,
          expect: { status: "success" },
        }),
        task("audit", [], { service: "demo", agent: "echo" }),
      ]),
    );
    expect(describePlan(plan)).toEqual([
      "pipeline p: 4 tasks, parallel, 3 levels",
      "level 1:",
      "  1. get_user   user-service/GetUserAgent",
      "  2. audit      demo/echo",
      "level 2:",
      "  3. orders     order-service/GetUserOrdersAgent  needs get_user  (retries 1)",
      "level 3:",
      "  4. summaries  demo/upper  needs orders  (for_each, async, timeout 10s, expect)",
    ]);
  });
});
