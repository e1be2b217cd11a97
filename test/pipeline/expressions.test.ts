// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is the pipeline expression syntax
import { describe, expect, it } from "vitest";
import { AgentctlError } from "../../src/errors.js";
import {
  evaluateString,
  evaluateTemplate,
  findExpressions,
  formatPath,
  parsePath,
  parseTemplate,
  referencedTasks,
  type TemplateScope,
  toText,
} from "../../src/pipeline/expressions.js";

const scope: TemplateScope = {
  vars: {
    user_id: "123",
    n: 5,
    flag: true,
    nothing: null,
    list: [1, 2, 3],
    obj: { a: { b: "deep" } },
    "a.b": 7,
  },
  env: { TOKEN: "s3cret", EMPTY: "" },
  tasks: {
    get_user: { output: { result: { name: "Ada", tags: ["x", "y"] }, status: "success" } },
    fan: { outputs: [{ result: "A" }, { result: "B" }] },
  },
  run: { id: "run-1" },
};

function templateError(fn: () => unknown): AgentctlError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AgentctlError);
    expect((err as AgentctlError).code).toBe("template");
    return err as AgentctlError;
  }
  throw new Error("expected a template error");
}

describe("parseTemplate", () => {
  it("splits text and expressions", () => {
    const t = parseTemplate("Hi ${{ vars.user_id }}, ${{tasks.get_user.output.result[0]}}!");
    expect(t.errors).toEqual([]);
    expect(t.parts).toEqual([
      { kind: "text", text: "Hi " },
      {
        kind: "expression",
        expression: { root: "vars", path: ["user_id"], start: 3, end: 22, text: "${{ vars.user_id }}" },
      },
      { kind: "text", text: ", " },
      {
        kind: "expression",
        expression: {
          root: "tasks",
          path: ["get_user", "output", "result", 0],
          start: 24,
          end: 60,
          text: "${{tasks.get_user.output.result[0]}}",
        },
      },
      { kind: "text", text: "!" },
    ]);
  });

  it("accepts whitespace, quoted keys and dashes in names", () => {
    const t = parseTemplate("${{\n  tasks.get-user.output[ \"a b\" ]['c\\'d'][ 2 ]  }}");
    expect(t.errors).toEqual([]);
    expect(t.parts[0]).toMatchObject({
      kind: "expression",
      expression: { root: "tasks", path: ["get-user", "output", "a b", "c'd", 2] },
    });
  });

  it("leaves text without expressions alone", () => {
    expect(parseTemplate("plain $ { { }} text")).toEqual({
      parts: [{ kind: "text", text: "plain $ { { }} text" }],
      errors: [],
    });
    expect(parseTemplate("")).toEqual({ parts: [], errors: [] });
  });

  it.each([
    ["${{ }}", 0, "empty expression ${{ }}"],
    ["a ${{ vars.x", 2, 'unterminated expression ${{ vars.x: missing "}}"'],
    ["${{ vars. }}", 9, 'expected a name after "." in expression ${{ vars. }}'],
    ["${{ vars.x + 1 }}", 11, 'unexpected "+" in expression ${{ vars.x + 1 }}'],
    ["${{ vars[x] }}", 9, 'expected an index like [0] or a key like ["name"] in expression ${{ vars[x] }}'],
    ["${{ vars[0 }}", 11, 'missing "]" in expression ${{ vars[0 }}'],
    ["${{ 1 }}", 4, 'expected a name like vars.NAME, got "1" in expression ${{ 1 }}'],
    ["${{ vars.__proto__ }}", 9, '"__proto__" cannot be used in expression ${{ vars.__proto__ }}'],
    ["${{ vars.constructor }}", 9, '"constructor" cannot be used'],
    ['${{ vars["prototype"] }}', 9, '"prototype" cannot be used'],
    [
      "${{ foo.bar }}",
      0,
      'unknown name "foo" in ${{ foo.bar }} (expected vars, env, tasks, item, index or run)',
    ],
    ["${{ var.x }}", 0, 'unknown name "var" in ${{ var.x }} (did you mean "vars"?)'],
    ["${{ vars.f() }}", 10, 'unexpected "("'],
  ])("reports %j", (input, offset, message) => {
    const t = parseTemplate(input);
    expect(t.errors.length).toBeGreaterThan(0);
    expect(t.errors[0]?.offset).toBe(offset);
    expect(t.errors[0]?.message).toContain(message);
  });

  it("reports every bad expression of a string and keeps the good ones", () => {
    const t = parseTemplate("${{ a b }} ${{ vars.ok }} ${{ }} ${{ vars.x - }}");
    expect(t.errors.map((e) => e.offset)).toEqual([6, 26, 44]);
    expect(t.parts.filter((p) => p.kind === "expression")).toHaveLength(1);
  });
});

describe("evaluateTemplate", () => {
  it("keeps the JSON type of a value that is exactly one expression", () => {
    expect(evaluateString("${{ vars.n }}", scope)).toBe(5);
    expect(evaluateString("${{ vars.flag }}", scope)).toBe(true);
    expect(evaluateString("${{ vars.nothing }}", scope)).toBeNull();
    expect(evaluateString("${{ vars.list }}", scope)).toEqual([1, 2, 3]);
    expect(evaluateString("${{ tasks.get_user.output.result }}", scope)).toEqual({
      name: "Ada",
      tags: ["x", "y"],
    });
    expect(evaluateString("${{ tasks.fan.outputs }}", scope)).toEqual([{ result: "A" }, { result: "B" }]);
    expect(evaluateString("${{ run.id }}", scope)).toBe("run-1");
  });

  it("inserts values into longer strings as text", () => {
    expect(evaluateString("n=${{ vars.n }}", scope)).toBe("n=5");
    expect(evaluateString(" ${{ vars.n }}", scope)).toBe(" 5");
    expect(evaluateString("${{ vars.flag }}/${{ vars.nothing }}", scope)).toBe("true/null");
    expect(evaluateString("list: ${{ vars.list }}", scope)).toBe("list: [1,2,3]");
    expect(evaluateString("obj: ${{ vars.obj }}", scope)).toBe('obj: {"a":{"b":"deep"}}');
    expect(evaluateString("${{ vars.user_id }}${{ vars.user_id }}", scope)).toBe("123123");
  });

  it("follows indexes, numeric names and quoted keys", () => {
    expect(evaluateString("${{ tasks.get_user.output.result.tags[1] }}", scope)).toBe("y");
    expect(evaluateString("${{ tasks.get_user.output.result.tags.0 }}", scope)).toBe("x");
    expect(evaluateString("${{ tasks.fan.outputs[1].result }}", scope)).toBe("B");
    expect(evaluateString('${{ vars["a.b"] }}', scope)).toBe(7);
    expect(evaluateString("${{ vars.obj.a.b }}", scope)).toBe("deep");
  });

  it("walks objects and lists and leaves keys and other values alone", () => {
    const input = {
      task: "${{ vars.user_id }}",
      context: { "${{ vars.n }}": ["${{ vars.n }}", 1, null, false], nested: { x: "id ${{ run.id }}" } },
    };
    const { value, secrets } = evaluateTemplate(input, scope);
    expect(value).toEqual({
      task: "123",
      context: { "${{ vars.n }}": [5, 1, null, false], nested: { x: "id run-1" } },
    });
    expect(secrets).toEqual([]);
    // The template itself is not modified.
    expect(input.task).toBe("${{ vars.user_id }}");
  });

  it("collects env values as secrets", () => {
    const { value, secrets } = evaluateTemplate(
      { a: "Bearer ${{ env.TOKEN }}", b: "${{ env.TOKEN }}", c: "${{ env.EMPTY }}" },
      scope,
    );
    expect(value).toEqual({ a: "Bearer s3cret", b: "s3cret", c: "" });
    expect(secrets).toEqual(["s3cret"]);
  });

  it("provides item and index only where they are set", () => {
    const withItem: TemplateScope = { ...scope, item: { title: "t" }, index: 0 };
    expect(evaluateString("${{ item.title }}#${{ index }}", withItem)).toBe("t#0");
    expect(evaluateString("${{ index }}", withItem)).toBe(0);
    expect(evaluateString("${{ item }}", { ...scope, item: null, index: 1 })).toBeNull();
    expect(templateError(() => evaluateString("${{ item }}", scope)).message).toBe(
      "cannot resolve ${{ item }}: item is only defined in a for_each task",
    );
  });

  it.each([
    ["${{ vars.missing }}", 'cannot resolve ${{ vars.missing }}: vars has no key "missing"'],
    ["x ${{ vars.missing }}", 'cannot resolve ${{ vars.missing }}: vars has no key "missing"'],
    ["${{ vars.list[3] }}", "cannot resolve ${{ vars.list[3] }}: vars.list has no item [3] (it has 3)"],
    [
      "${{ vars.list.x }}",
      "cannot resolve ${{ vars.list.x }}: vars.list is a list; use an index like vars.list[0]",
    ],
    ["${{ vars.n.x }}", "cannot resolve ${{ vars.n.x }}: vars.n is a number, not a mapping or a list"],
    [
      "${{ vars.nothing.x }}",
      "cannot resolve ${{ vars.nothing.x }}: vars.nothing is null, not a mapping or a list",
    ],
    [
      "${{ vars.user_id[0] }}",
      "cannot resolve ${{ vars.user_id[0] }}: vars.user_id is a string, not a mapping or a list",
    ],
    [
      "${{ tasks.nope.output }}",
      'cannot resolve ${{ tasks.nope.output }}: task "nope" has no output (it has not run or did not succeed)',
    ],
    ["${{ tasks.fan.output }}", 'cannot resolve ${{ tasks.fan.output }}: tasks.fan has no key "output"'],
    ["${{ env.NOPE }}", "cannot resolve ${{ env.NOPE }}: environment variable NOPE is not set"],
    ["${{ env }}", "cannot resolve ${{ env }}: use env.NAME"],
    ["${{ vars.x ", 'unterminated expression ${{ vars.x : missing "}}"'],
  ])("fails with a template error for %j", (input, message) => {
    expect(templateError(() => evaluateString(input, scope)).message).toBe(message);
  });

  it("never reads inherited properties", () => {
    const vars = { plain: {} as Record<string, unknown>, list: [] as unknown[] };
    for (const path of [
      "plain.toString",
      "plain.hasOwnProperty",
      "plain.valueOf",
      "list.map",
      "list.length",
    ]) {
      const err = templateError(() => evaluateString(`\${{ vars.${path} }}`, { vars }));
      expect(err.message).toContain("cannot resolve");
    }
    for (const path of [
      "plain.__proto__",
      "plain.constructor",
      "plain.constructor.prototype",
      '["__proto__"]',
    ]) {
      expect(() => evaluateString(`\${{ vars.${path} }}`, { vars })).toThrow(
        /cannot be used|expected a name/,
      );
    }
  });

  it("reads own data properties even from objects with odd keys", () => {
    const vars = JSON.parse('{"__proto__": {"x": 1}, "hasOwnProperty": 2}') as Record<string, unknown>;
    expect(evaluateString("${{ vars.hasOwnProperty }}", { vars })).toBe(2);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it("does not pollute prototypes through template keys", () => {
    const template = JSON.parse('{"__proto__": {"polluted": "${{ vars.n }}"}, "a": 1}') as unknown;
    const { value } = evaluateTemplate(template, scope);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.hasOwn(value as object, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("renders text like JSON", () => {
    expect(toText("s")).toBe("s");
    expect(toText(1.5)).toBe("1.5");
    expect(toText(false)).toBe("false");
    expect(toText(null)).toBe("null");
    expect(toText({ a: [1] })).toBe('{"a":[1]}');
  });
});

describe("static analysis", () => {
  it("lists the tasks a value refers to", () => {
    expect(
      referencedTasks({
        task: "${{ tasks.a.output.result }} ${{ tasks.b.outputs }}",
        context: ["${{ tasks.a.output }}", { x: "${{ tasks.c-1.output.result[0] }}", y: "${{ vars.x }}" }],
      }),
    ).toEqual(["a", "b", "c-1"]);
    expect(referencedTasks("${{ tasks.x.output }}")).toEqual(["x"]);
    expect(referencedTasks({ a: 1, b: "no expressions" })).toEqual([]);
  });

  it("finds expressions with their location", () => {
    const sites = findExpressions({ a: ["x", "${{ vars.a }}"], b: { c: "${{ bad" } }, ["input"]);
    expect(sites.map((s) => s.at)).toEqual([
      ["input", "a", 1],
      ["input", "b", "c"],
    ]);
    expect(sites[1]?.parsed.errors).toHaveLength(1);
  });

  it("parses and formats paths", () => {
    expect(parsePath("result.words")).toEqual({ root: "result", path: ["words"] });
    expect(parsePath('metadata["a.b"][0]')).toEqual({ root: "metadata", path: ["a.b", 0] });
    expect(parsePath("result.")).toEqual({ error: 'expected a name after "."' });
    expect(parsePath("result words")).toEqual({ error: 'unexpected " "' });
    expect(formatPath("tasks", ["a", "output", "x y", 0])).toBe('tasks.a.output["x y"][0]');
  });
});
