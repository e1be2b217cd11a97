import { AgentctlError } from "../errors.js";

/** Where instances live in etcd when the URL names no prefix (SPEC §9). */
export const DEFAULT_ETCD_PREFIX = "/agentctl/services";

/** Port of an etcd host written without one. */
export const DEFAULT_ETCD_PORT = 2379;

export interface EtcdUrl {
  /** `http://HOST:PORT`, one per host of the URL, in order. */
  hosts: string[];
  /** Key prefix, leading slash included, no trailing slash (default `/agentctl/services`). */
  prefix: string;
}

/**
 * Parses `etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]`. Hosts are names, IPv4 addresses or
 * bracketed IPv6 addresses; the port defaults to 2379. The prefix is the URL's path as written
 * (trailing slashes dropped; none, or just `/`, means the default). Anything else — another scheme,
 * no host, a bad port, credentials, a query or a fragment — is rejected with code `invalid`.
 */
export function parseEtcdUrl(url: string): EtcdUrl {
  const bad = (why: string) =>
    new AgentctlError("invalid", `invalid etcd URL ${JSON.stringify(url)}: ${why}`);
  if (typeof url !== "string") throw bad("not a string");
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(url.trim());
  if (!match) throw bad("expected etcd://HOST:PORT[/PREFIX]");
  const scheme = match[1]!.toLowerCase();
  if (scheme !== "etcd") throw bad(`expected the etcd:// scheme, got ${scheme}://`);
  const rest = match[2]!;
  if (/[?#]/.test(rest)) throw bad("a query or fragment is not allowed");
  if (/\s/.test(rest)) throw bad("whitespace is not allowed");
  const slash = rest.indexOf("/");
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  if (authority.includes("@")) throw bad("credentials in the URL are not supported");
  if (authority === "") throw bad("no host");

  const hosts = authority.split(",").map((part) => {
    if (part === "") throw bad("an empty host in the host list");
    let host: string;
    let port: string | undefined;
    if (part.startsWith("[")) {
      const close = part.indexOf("]");
      if (close < 0) throw bad(`unterminated IPv6 address in ${JSON.stringify(part)}`);
      host = part.slice(0, close + 1);
      const after = part.slice(close + 1);
      if (after !== "") {
        if (!after.startsWith(":")) throw bad(`unexpected ${JSON.stringify(after)} after ${host}`);
        port = after.slice(1);
      }
      if (!/^\[[0-9A-Fa-f:.]+\]$/.test(host)) throw bad(`invalid IPv6 address ${host}`);
    } else {
      const colon = part.indexOf(":");
      host = colon < 0 ? part : part.slice(0, colon);
      port = colon < 0 ? undefined : part.slice(colon + 1);
      if (host === "") throw bad(`no host in ${JSON.stringify(part)}`);
      if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host) || host.includes("..")) {
        throw bad(`invalid host ${JSON.stringify(host)}`);
      }
    }
    let n = DEFAULT_ETCD_PORT;
    if (port !== undefined) {
      n = Number(port);
      if (!/^\d{1,5}$/.test(port) || n < 1 || n > 65535) {
        throw bad(`invalid port ${JSON.stringify(port)} (expected 1 to 65535)`);
      }
    }
    return `http://${host}:${n}`;
  });

  const trimmed = path.replace(/\/+$/, "");
  if (trimmed.includes("//")) throw bad("the prefix has an empty segment");
  return { hosts, prefix: trimmed === "" ? DEFAULT_ETCD_PREFIX : trimmed };
}

/** The URL as given, for messages: credentials never occur (they are rejected). */
export function describeEtcdUrl(parsed: EtcdUrl): string {
  return `etcd://${parsed.hosts.map((h) => h.replace(/^https?:\/\//, "")).join(",")}${parsed.prefix}`;
}
