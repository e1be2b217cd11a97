/**
 * Parsing YAML text into a plain JSON-like value while keeping source positions, defensively:
 * hostile files (deep nesting, alias bombs, recursive aliases, huge token counts, NUL bytes)
 * end in diagnostics within bounded time and memory and never throw.
 *
 * The text goes through the `yaml` package's lexer and CST parser one token at a time, so that
 * nesting depth and token count are bounded *before* the recursive composer runs (a very deep
 * document would otherwise exhaust the stack, which V8 may not survive). Duplicate keys are found
 * here in linear time (the package's own `uniqueKeys` check is quadratic in the size of a mapping),
 * and aliases are resolved and measured here (cycles, expanded size and depth) before `toJS`.
 */

import {
  type Alias,
  Composer,
  CST,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type Pair,
  Parser,
  type YAMLMap,
} from "yaml";
import { quote } from "./text.js";
import type { Diagnostic } from "./types.js";
import type { JsonPath } from "./validate-schema.js";

/** Larger files are refused without being parsed. */
export const MAX_FILE_BYTES = 16 * 1024 * 1024;
/** YAML tokens in one file (a large pipeline has a few thousand). */
export const MAX_YAML_TOKENS = 500_000;
/** Nesting depth, counted in open YAML collections (after alias expansion too). */
export const MAX_DEPTH = 200;
/** Alias nodes in one file. */
export const MAX_ALIASES = 1000;
/** Double-quoted scalars longer than this are checked for the fast path (see fastScalars). */
const LONG_SCALAR = 64 * 1024;
/** Long double-quoted scalars that need escapes resolved may be this long in all. */
const MAX_SLOW_SCALARS = 4 * 1024 * 1024;
/** Nodes of the document once every alias is expanded. */
export const MAX_EXPANDED_NODES = 1_000_000;

export interface Position {
  line: number;
  column: number;
}

type YNode = unknown;

const PARSE_OPTIONS = {
  // Duplicate keys are checked below, in linear time.
  uniqueKeys: false,
  prettyErrors: false,
  strict: true,
  stringKeys: true,
  merge: true,
  // Only the YAML 1.2 core types (no !!binary, !!set, !!omap: they would not be JSON).
  resolveKnownTags: false,
  logLevel: "silent",
} as const;

/** A parsed YAML file: its value, its problems, and a way back from JSON paths to positions. */
export class YamlSource {
  readonly file: string;
  readonly text: string;
  readonly diagnostics: Diagnostic[] = [];
  readonly warnings: Diagnostic[] = [];
  /** The document as plain data; `undefined` when it could not be built (see diagnostics). */
  value: unknown;
  private readonly lines = new LineCounter();
  private doc: Document.Parsed | undefined;
  private readonly aliasTargets = new Map<Alias, YNode>();
  private readonly pairIndex = new Map<YAMLMap, Map<string, Pair>>();

  constructor(file: string, text: string) {
    this.file = file;
    this.text = text;
  }

  /** An error at an offset of the text. */
  errorAt(offset: number, message: string): void {
    this.diagnostics.push({ file: this.file, ...this.positionOfOffset(offset), message });
  }

  warningAt(offset: number, message: string): void {
    this.warnings.push({ file: this.file, ...this.positionOfOffset(offset), message });
  }

  /** An error about the value at `path` (or, with `atKey`, about its key). */
  error(path: JsonPath, message: string, atKey = false): void {
    this.diagnostics.push({ file: this.file, ...this.position(path, atKey), message });
  }

  warning(path: JsonPath, message: string, atKey = false): void {
    this.warnings.push({ file: this.file, ...this.position(path, atKey), message });
  }

  positionOfOffset(offset: number): Position {
    const { line, col } = this.lines.linePos(Math.max(0, Math.min(offset, this.text.length)));
    return { line, column: col };
  }

  /**
   * The position of the value at `path` (its key with `atKey`, or when the value is empty);
   * the nearest ancestor that exists when the path does not (fully) exist in the source.
   */
  position(path: JsonPath, atKey = false): Position {
    return this.positionOfOffset(this.offsetOf(path, atKey));
  }

  offsetOf(path: JsonPath, atKey = false): number {
    const { node, key } = this.locate(path);
    const target = atKey || isEmptyScalar(node) ? (key ?? node) : node;
    return rangeStart(target) ?? rangeStart(node) ?? 0;
  }

  /**
   * The offset of character `index` of the string at `path`, when the string is written on one
   * line without escapes (plain or quoted); else the string's start.
   */
  offsetInString(path: JsonPath, index: number): number {
    const { node } = this.locate(path);
    if (isScalar(node) && typeof node.value === "string" && Array.isArray(node.range)) {
      const [start, end] = node.range;
      const raw = this.text.slice(start, end);
      if (node.type === "PLAIN" && raw === node.value) return start + index;
      if ((node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE") && raw.slice(1, -1) === node.value) {
        return start + 1 + index;
      }
    }
    return this.offsetOf(path);
  }

  /** An error about character `index` of the string at `path` (see {@link offsetInString}). */
  errorInString(path: JsonPath, index: number, message: string): void {
    this.errorAt(this.offsetInString(path, index), message);
  }

  /** The node at `path` (or the nearest ancestor that exists) and the key node it is under. */
  private locate(path: JsonPath): { node: YNode; key: YNode } {
    if (this.doc === undefined) return { node: undefined, key: undefined };
    let node: YNode = this.doc.contents;
    let key: YNode;
    for (const seg of path) {
      node = this.deref(node);
      let next: YNode;
      let nextKey: YNode;
      if (isMap(node)) {
        const pair = this.findPair(node, String(seg), 0);
        if (pair !== undefined) {
          nextKey = pair.key;
          next = pair.value ?? pair.key;
        }
      } else if (isSeq(node) && typeof seg === "number") {
        next = node.items[seg];
      }
      if (next === undefined) break;
      node = next;
      key = nextKey;
    }
    return { node, key };
  }

  // -------------------------------------------------------------------------------------------

  /** Parses the text; fills `value`, `diagnostics` and `warnings`. */
  parse(): this {
    const previousLimit = Error.stackTraceLimit;
    // The yaml package makes an Error per problem; stack traces make hostile files slow.
    Error.stackTraceLimit = 0;
    try {
      this.parseInner();
    } catch (err) {
      // Nothing should get here; whatever does becomes a diagnostic, never a crash.
      this.value = undefined;
      const message = err instanceof Error ? err.message : String(err);
      this.errorAt(0, `cannot parse the file: ${message}`);
    } finally {
      Error.stackTraceLimit = previousLimit;
    }
    return this;
  }

  private parseInner(): void {
    const text = this.text;
    const nul = text.indexOf("\0");
    const tokens = this.tokens(text);
    if (nul >= 0) {
      this.errorAt(nul, "the file contains a NUL byte (is it a binary file?)");
      return;
    }
    if (tokens === undefined) return;

    const composer = new Composer(PARSE_OPTIONS);
    let doc: Document.Parsed | undefined;
    for (const d of composer.compose(tokens, true, text.length)) {
      if (doc === undefined) doc = d;
      else {
        this.errorAt(d.range[0], "a file holds one YAML document: remove the second one (after ---)");
        break;
      }
    }
    if (doc === undefined) return;
    this.doc = doc;
    let quoted: CST.FlowScalar[] | undefined;
    // One syntax error per line: the parser's follow-ups on the same line only repeat the first.
    // In offset order, so the end of the last line reported is all it takes to tell (a hostile
    // file may hold one huge line with thousands of errors).
    let lineEnd = -1;
    for (const e of [...doc.errors].sort((a, b) => a.pos[0] - b.pos[0])) {
      // An unclosed quote is found at the end of the file: point at where the string opens.
      if (e.code === "MISSING_CHAR") quoted ??= quotedScalars(tokens);
      const opening = e.code === "MISSING_CHAR" ? openingQuote(quoted!, e.pos[0]) : undefined;
      if (opening !== undefined) {
        // The likely cause of the rest: always said.
        this.errorAt(opening, "this quoted string is never closed (a missing quote?)");
        continue;
      }
      const at = e.pos[0];
      if (at <= lineEnd) continue;
      const start = text.lastIndexOf("\n", at - 1) + 1;
      const end = text.indexOf("\n", at);
      lineEnd = end === -1 ? text.length : end;
      this.errorAt(at, yamlMessage(e.code, e.message, text.slice(start, lineEnd)));
    }
    for (const w of doc.warnings) this.warningAt(w.pos[0], yamlMessage(w.code, w.message));
    if (doc.errors.length > 0) return;

    if (!this.walk(doc)) return;
    // Without aliases, depth and size are already bounded by the token checks.
    if (this.aliasTargets.size > 0 && !this.measure(doc)) return;
    try {
      this.value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const alias = this.firstAlias();
      this.errorAt(
        alias === undefined ? 0 : (rangeStart(alias) ?? 0),
        /alias count/i.test(message) ? "too many alias expansions (an alias bomb?)" : lowerFirst(message),
      );
      this.value = undefined;
    }
  }

  /** CST tokens, or undefined (with a diagnostic) when the text is too large or too deep. */
  private tokens(text: string): CST.Token[] | undefined {
    const parser = new Parser(this.lines.addNewLine);
    this.lines.addNewLine(0);
    const tokens: CST.Token[] = [];
    let count = 0;
    for (const lexeme of new Lexer().lex(text)) {
      if (++count > MAX_YAML_TOKENS) {
        this.errorAt(parser.offset, `the file is too large: more than ${MAX_YAML_TOKENS} YAML tokens`);
        return undefined;
      }
      for (const token of parser.next(lexeme)) tokens.push(token);
      if (parser.stack.length > MAX_DEPTH) {
        this.errorAt(parser.offset, `nesting too deep (more than ${MAX_DEPTH} levels)`);
        return undefined;
      }
    }
    for (const token of parser.end()) tokens.push(token);
    return this.fastScalars(tokens) ? tokens : undefined;
  }

  /**
   * The `yaml` package resolves double-quoted scalars one character at a time (seconds for a
   * 10 MB string). A long double-quoted scalar without escapes, line breaks or `'` has the same
   * value single-quoted, which resolves quickly: its CST token is retyped in place (same length,
   * so positions do not move). Long double-quoted scalars that still need the slow path are
   * refused.
   */
  private fastScalars(tokens: CST.Token[]): boolean {
    const stack: unknown[] = [...tokens];
    let slow = 0;
    while (stack.length > 0) {
      const token = stack.pop();
      if (token === null || typeof token !== "object") continue;
      const t = token as {
        type?: unknown;
        source?: unknown;
        offset?: unknown;
        items?: unknown;
        value?: unknown;
      };
      if (
        t.type === "double-quoted-scalar" &&
        typeof t.source === "string" &&
        t.source.length > LONG_SCALAR
      ) {
        const fast = !/[\\\n\r']/.test(t.source.slice(1, -1)) && t.source.endsWith('"');
        if (!fast) slow += t.source.length;
        if (fast) {
          t.type = "single-quoted-scalar";
          t.source = `'${t.source.slice(1, -1)}'`;
        } else if (slow > MAX_SLOW_SCALARS) {
          const offset = typeof t.offset === "number" ? t.offset : 0;
          this.errorAt(
            offset,
            `double-quoted strings with escapes, line breaks or ' are too long (more than ${MAX_SLOW_SCALARS} characters in all): use block scalars (|)`,
          );
          return false;
        }
      }
      if (Array.isArray(t.items)) {
        for (const item of t.items as { key?: unknown; value?: unknown }[])
          stack.push(item?.key, item?.value);
      }
      if (t.value !== undefined) stack.push(t.value);
    }
    return true;
  }

  /**
   * One pass over the nodes in document order: resolves aliases (the last anchor of that name
   * before the alias), counts them, and reports duplicate keys.
   */
  private walk(doc: Document.Parsed): boolean {
    const anchors = new Map<string, YNode>();
    const stack: YNode[] = [doc.contents];
    let aliases = 0;
    let ok = true;
    while (stack.length > 0) {
      const node = stack.pop();
      if (node === null || typeof node !== "object") continue;
      if (isAlias(node)) {
        if (++aliases > MAX_ALIASES) {
          this.errorAt(rangeStart(node) ?? 0, `too many aliases (more than ${MAX_ALIASES})`);
          return false;
        }
        const target = anchors.get(node.source);
        if (target === undefined) {
          this.errorAt(
            rangeStart(node) ?? 0,
            `unknown alias *${node.source} (define &${node.source} before it)`,
          );
          ok = false;
        } else {
          this.aliasTargets.set(node, target);
        }
        continue;
      }
      const anchor = (node as { anchor?: unknown }).anchor;
      if (typeof anchor === "string") anchors.set(anchor, node);
      if (isMap(node)) {
        const seen = new Map<string, number>();
        for (const pair of node.items) {
          if (!isScalar(pair.key)) continue;
          const key = String(pair.key.value);
          if (key === "<<") continue;
          const first = seen.get(key);
          const at = rangeStart(pair.key) ?? 0;
          if (first !== undefined) {
            this.errorAt(
              at,
              `duplicate key ${quote(key)} (first at line ${this.positionOfOffset(first).line})`,
            );
            ok = false;
          } else {
            seen.set(key, at);
          }
        }
        for (let i = node.items.length - 1; i >= 0; i--) {
          const pair = node.items[i];
          if (pair === undefined) continue;
          stack.push(pair.value, pair.key);
        }
      } else if (isSeq(node)) {
        for (let i = node.items.length - 1; i >= 0; i--) stack.push(node.items[i]);
      }
    }
    return ok;
  }

  /** Depth and size of the document with aliases expanded; a recursive alias is an error. */
  private measure(doc: Document.Parsed): boolean {
    interface Frame {
      node: object;
      children: YNode[];
      next: number;
      depth: number;
      size: number;
    }
    const memo = new Map<object, { depth: number; size: number }>();
    const onStack = new Set<object>();
    const childrenOf = (node: object): YNode[] => {
      if (isAlias(node)) return [this.aliasTargets.get(node)];
      if (isMap(node)) return node.items.flatMap((p) => [p.key, p.value]);
      if (isSeq(node)) return node.items;
      return [];
    };
    const root = doc.contents;
    if (root === null || typeof root !== "object") return true;
    const frames: Frame[] = [{ node: root, children: childrenOf(root), next: 0, depth: 0, size: 1 }];
    onStack.add(root);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1] as Frame;
      if (frame.next < frame.children.length) {
        const child = frame.children[frame.next++];
        if (child === null || typeof child !== "object") continue;
        if (onStack.has(child)) {
          this.errorAt(rangeStart(frame.node) ?? 0, "recursive alias: it refers to a node that contains it");
          return false;
        }
        const known = memo.get(child);
        if (known !== undefined) {
          frame.depth = Math.max(frame.depth, known.depth);
          frame.size += known.size;
        } else {
          onStack.add(child);
          frames.push({ node: child, children: childrenOf(child), next: 0, depth: 0, size: 1 });
        }
      } else {
        frames.pop();
        onStack.delete(frame.node);
        const isCollection = isMap(frame.node) || isSeq(frame.node);
        const result = {
          depth: frame.depth + (isCollection ? 1 : 0),
          size: isAlias(frame.node) ? frame.size - 1 : frame.size,
        };
        if (result.depth > MAX_DEPTH) {
          this.errorAt(
            rangeStart(frame.node) ?? 0,
            `nesting too deep once aliases are expanded (more than ${MAX_DEPTH} levels)`,
          );
          return false;
        }
        if (result.size > MAX_EXPANDED_NODES) {
          this.errorAt(
            rangeStart(frame.node) ?? 0,
            `too many values once aliases are expanded (more than ${MAX_EXPANDED_NODES}; an alias bomb?)`,
          );
          return false;
        }
        memo.set(frame.node, result);
        const parent = frames[frames.length - 1];
        if (parent !== undefined) {
          parent.depth = Math.max(parent.depth, result.depth);
          parent.size += result.size;
        }
      }
    }
    return true;
  }

  private firstAlias(): YNode {
    for (const alias of this.aliasTargets.keys()) return alias;
    return undefined;
  }

  private deref(node: YNode): YNode {
    let current = node;
    for (let i = 0; i < 100 && isAlias(current); i++) current = this.aliasTargets.get(current);
    return current;
  }

  /** The pair with `key` in a mapping, looking into `<<` merge keys as well. */
  private findPair(map: YAMLMap, key: string, depth: number): Pair | undefined {
    let index = this.pairIndex.get(map);
    if (index === undefined) {
      index = new Map();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const k = String(pair.key.value);
        if (!index.has(k)) index.set(k, pair as Pair);
      }
      this.pairIndex.set(map, index);
    }
    const direct = index.get(key);
    if (direct !== undefined || depth > 8) return direct;
    const merge = index.get("<<");
    if (merge === undefined) return undefined;
    const sources = isSeq(merge.value) ? merge.value.items : [merge.value];
    for (const source of sources) {
      const target = this.deref(source);
      if (!isMap(target)) continue;
      const found = this.findPair(target, key, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
}

/** Reads YAML text; see {@link YamlSource}. Never throws. */
export function parseYaml(file: string, text: string): YamlSource {
  return new YamlSource(file, text).parse();
}

function rangeStart(node: YNode): number | undefined {
  if (node === null || typeof node !== "object") return undefined;
  const range = (node as { range?: unknown }).range;
  return Array.isArray(range) && typeof range[0] === "number" ? range[0] : undefined;
}

function isEmptyScalar(node: YNode): boolean {
  return isScalar(node) && node.value === null && (node.source === "" || node.source === undefined);
}

function lowerFirst(s: string): string {
  // Not an acronym (`YAML`, `JSON`): those keep their case.
  return /^[A-Z](?![A-Z])/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s;
}

/** The quoted scalars of the documents, in file order. */
function quotedScalars(tokens: readonly CST.Token[]): CST.FlowScalar[] {
  const out: CST.FlowScalar[] = [];
  const add = (t: CST.Token | null | undefined) => {
    if (t?.type === "double-quoted-scalar" || t?.type === "single-quoted-scalar") out.push(t);
  };
  for (const token of tokens) {
    if (token.type !== "document") continue;
    add(token.value);
    CST.visit(token, (item) => {
      add(item.key);
      add(item.value);
    });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** The start of the quoted scalar that runs on to `offset` (an unclosed quote there), if any. */
function openingQuote(quoted: readonly CST.FlowScalar[], offset: number): number | undefined {
  // The last one starting at or before `offset` (binary search: a hostile file has many errors).
  let lo = 0;
  let hi = quoted.length - 1;
  let found: CST.FlowScalar | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (quoted[mid]!.offset <= offset) {
      found = quoted[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found !== undefined && offset <= found.offset + found.source.length ? found.offset : undefined;
}

/** A YAML syntax error said for people: what usually causes it, where that is known. */
function yamlMessage(code: string, message: string, line = ""): string {
  switch (code) {
    case "TAB_AS_INDENT":
      return "tabs are not allowed for indentation in YAML; use spaces";
    case "TAG_RESOLVE_FAILED":
      return `${lowerFirst(message)} (the value is read as a plain string)`;
  }
  // `{ task: ${{ x }} }`: in a flow mapping or list the braces of an expression are YAML's.
  if (hasUnquotedExpression(line)) {
    return `YAML: ${lowerFirst(message)} (inside { } or [ ], quote a value that holds an expression: "\${{ … }}")`;
  }
  switch (code) {
    case "NON_STRING_KEY":
      return "YAML: a key must be a plain string, not a list or a mapping (or is the indentation off around here?)";
    case "BLOCK_AS_IMPLICIT_KEY":
    case "MULTILINE_IMPLICIT_KEY":
      return `YAML: ${lowerFirst(message)} (check the indentation of the lines around here)`;
    default:
      return `YAML: ${lowerFirst(message)}`;
  }
}

/** Whether `line` holds `${{` outside quotes and comments (a plain scalar). */
function hasUnquotedExpression(line: string): boolean {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return false;
    else if (c === "$" && line.startsWith("${{", i)) return true;
  }
  return false;
}
