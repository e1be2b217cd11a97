/**
 * A small, strict XML 1.0 well-formedness checker and tree builder for the JUnit reports: enough
 * of the grammar to reject what matters (unbalanced or crossed tags, unquoted or duplicate
 * attributes, raw `<` or `&`, unknown entities, forbidden control characters, several roots,
 * text outside the root). Throws an Error naming the offset on the first problem.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Character data directly inside this element (entities decoded). */
  text: string;
}

const NAME = /[A-Za-z_:][A-Za-z0-9_:.-]*/y;
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

function decode(raw: string, at: number): string {
  if (/</.test(raw)) throw new Error(`raw "<" in character data or attribute near offset ${at}`);
  return raw.replace(/&([^;]*);?/g, (whole, body: string) => {
    if (!whole.endsWith(";")) throw new Error(`unterminated entity near offset ${at}: ${whole.slice(0, 12)}`);
    switch (body) {
      case "amp":
        return "&";
      case "lt":
        return "<";
      case "gt":
        return ">";
      case "quot":
        return '"';
      case "apos":
        return "'";
    }
    const m = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(body);
    if (!m) throw new Error(`unknown entity &${body}; near offset ${at}`);
    const code = m[1] !== undefined ? Number.parseInt(m[1], 16) : Number(m[2]);
    const ch = String.fromCodePoint(code);
    if (FORBIDDEN.test(ch) || code === 0)
      throw new Error(`character reference to a forbidden character near ${at}`);
    return ch;
  });
}

export function parseXml(xml: string): XmlElement {
  const bad = FORBIDDEN.exec(xml);
  if (bad)
    throw new Error(`forbidden character U+${bad[0].charCodeAt(0).toString(16)} at offset ${bad.index}`);
  let i = 0;
  if (xml.startsWith("<?xml")) {
    const end = xml.indexOf("?>");
    if (end === -1) throw new Error("unterminated XML declaration");
    if (
      !/^<\?xml\s+version="1\.[0-9]"(\s+encoding="[A-Za-z0-9._-]+")?(\s+standalone="(yes|no)")?\s*\?>$/.test(
        xml.slice(0, end + 2),
      )
    )
      throw new Error(`bad XML declaration: ${xml.slice(0, end + 2)}`);
    i = end + 2;
  }
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;

  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(xml);
    if (!m) throw new Error(`expected a name at offset ${i}: ${JSON.stringify(xml.slice(i, i + 20))}`);
    i += m[0].length;
    return m[0];
  };
  const spaces = (): boolean => {
    const start = i;
    while (i < xml.length && /\s/.test(xml[i]!)) i++;
    return i > start;
  };

  while (i < xml.length) {
    if (xml.startsWith("<!--", i)) {
      const end = xml.indexOf("-->", i + 4);
      if (end === -1) throw new Error(`unterminated comment at ${i}`);
      if (xml.slice(i + 4, end).includes("--")) throw new Error(`"--" inside a comment at ${i}`);
      i = end + 3;
      continue;
    }
    if (xml.startsWith("<![CDATA[", i)) {
      if (stack.length === 0) throw new Error(`CDATA outside the root at ${i}`);
      const end = xml.indexOf("]]>", i);
      if (end === -1) throw new Error(`unterminated CDATA at ${i}`);
      stack[stack.length - 1]!.text += xml.slice(i + 9, end);
      i = end + 3;
      continue;
    }
    if (xml.startsWith("</", i)) {
      i += 2;
      const n = name();
      spaces();
      if (xml[i] !== ">") throw new Error(`expected ">" at ${i}`);
      i++;
      const open = stack.pop();
      if (!open || open.name !== n)
        throw new Error(`closing </${n}> does not match <${open?.name ?? "(nothing)"}> at ${i}`);
      continue;
    }
    if (xml[i] === "<") {
      i++;
      const el: XmlElement = { name: name(), attrs: {}, children: [], text: "" };
      for (;;) {
        const hadSpace = spaces();
        if (xml.startsWith("/>", i) || xml[i] === ">") break;
        if (!hadSpace) throw new Error(`expected whitespace before an attribute at ${i}`);
        const a = name();
        spaces();
        if (xml[i] !== "=") throw new Error(`expected "=" after attribute ${a} at ${i}`);
        i++;
        spaces();
        const quote = xml[i];
        if (quote !== '"' && quote !== "'") throw new Error(`unquoted value of attribute ${a} at ${i}`);
        const end = xml.indexOf(quote, i + 1);
        if (end === -1) throw new Error(`unterminated value of attribute ${a} at ${i}`);
        if (Object.hasOwn(el.attrs, a)) throw new Error(`duplicate attribute ${a} at ${i}`);
        el.attrs[a] = decode(xml.slice(i + 1, end), i);
        i = end + 1;
      }
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) throw new Error(`a second root element <${el.name}> at ${i}`);
      else root = el;
      if (xml.startsWith("/>", i)) {
        i += 2;
      } else {
        i++;
        stack.push(el);
      }
      continue;
    }
    const next = xml.indexOf("<", i);
    const end = next === -1 ? xml.length : next;
    const raw = xml.slice(i, end);
    if (stack.length === 0) {
      if (raw.trim() !== "")
        throw new Error(`text outside the root element at ${i}: ${JSON.stringify(raw.slice(0, 20))}`);
    } else {
      if (raw.includes("]]>")) throw new Error(`"]]>" in character data at ${i}`);
      stack[stack.length - 1]!.text += decode(raw, i);
    }
    i = end;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (!root) throw new Error("no root element");
  return root;
}

/** Every element named `name` below `el` (depth first, document order). */
export function findAll(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const child of el.children) {
    if (child.name === name) out.push(child);
    out.push(...findAll(child, name));
  }
  return out;
}
