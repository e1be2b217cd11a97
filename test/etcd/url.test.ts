import { describe, expect, it } from "vitest";
import { AgentctlError } from "../../src/errors.js";
import { decodeInstance, encodeInstance, instanceKey } from "../../src/registry/etcd-layout.js";
import { parseEtcdUrl } from "../../src/registry/etcd-url.js";

describe("parseEtcdUrl", () => {
  it("reads one host with the default prefix", () => {
    expect(parseEtcdUrl("etcd://127.0.0.1:2379")).toEqual({
      hosts: ["http://127.0.0.1:2379"],
      prefix: "/agentctl/services",
    });
    expect(parseEtcdUrl("etcd://localhost:2379/").prefix).toBe("/agentctl/services");
  });

  it("reads several hosts and a prefix, leading slash included", () => {
    expect(parseEtcdUrl("etcd://h1:2379,h2.example.com:32379/team-a/svc/")).toEqual({
      hosts: ["http://h1:2379", "http://h2.example.com:32379"],
      prefix: "/team-a/svc",
    });
  });

  it("defaults the port to 2379 and accepts bracketed IPv6", () => {
    expect(parseEtcdUrl("etcd://etcd,[::1]:2380,[fe80::1]").hosts).toEqual([
      "http://etcd:2379",
      "http://[::1]:2380",
      "http://[fe80::1]:2379",
    ]);
  });

  it.each([
    ["http://127.0.0.1:2379", /etcd:\/\/ scheme/],
    ["127.0.0.1:2379", /expected etcd:/],
    ["etcd://", /no host/],
    ["etcd:///prefix", /no host/],
    ["etcd://h1:2379,,h2:2379", /empty host/],
    ["etcd://:2379", /no host/],
    ["etcd://host:0", /invalid port/],
    ["etcd://host:65536", /invalid port/],
    ["etcd://host:12ab", /invalid port/],
    ["etcd://host:", /invalid port/],
    ["etcd://user:pw@host:2379", /credentials/],
    ["etcd://host:2379/p?x=1", /query/],
    ["etcd://host:2379/p#f", /fragment/],
    ["etcd://ho st:2379", /whitespace/],
    ["etcd://host_name:2379", /invalid host/],
    ["etcd://[::1:2379", /IPv6/],
    ["etcd://host:2379/a//b", /empty segment/],
  ])("rejects %s with code invalid", (url, message) => {
    let error: unknown;
    try {
      parseEtcdUrl(url);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AgentctlError);
    expect((error as AgentctlError).code).toBe("invalid");
    expect((error as AgentctlError).message).toMatch(message);
  });
});

describe("etcd layout", () => {
  const prefix = "/agentctl/services";

  it("round-trips an instance", () => {
    const key = instanceKey(prefix, "users", "users-1");
    expect(key).toBe("/agentctl/services/users/users-1");
    const value = encodeInstance({
      id: "users-1",
      service: "users",
      endpoint: "http://127.0.0.1:8081/team",
      agents: ["GetUser"],
      metadata: { zone: "a" },
    });
    expect(JSON.parse(value)).toEqual({
      id: "users-1",
      service: "users",
      endpoint: "http://127.0.0.1:8081/team",
      agents: ["GetUser"],
      metadata: { zone: "a" },
    });
    expect(decodeInstance(prefix, key, value)).toEqual({
      ok: true,
      instance: {
        key,
        id: "users-1",
        service: "users",
        endpoint: "http://127.0.0.1:8081/team",
        agents: ["GetUser"],
        metadata: { zone: "a" },
      },
    });
  });

  it("takes id and service from the key when the value leaves them out; null agents = any", () => {
    const decoded = decodeInstance(
      prefix,
      `${prefix}/users/u-2`,
      '{"endpoint":"http://h:1","agents":null,"metadata":null}',
    );
    expect(decoded).toEqual({
      ok: true,
      instance: { key: `${prefix}/users/u-2`, id: "u-2", service: "users", endpoint: "http://h:1" },
    });
  });

  it.each([
    [`${prefix}/users/u-1`, "not json", /not JSON/],
    [`${prefix}/users/u-1`, "[1,2]", /not a JSON object/],
    [`${prefix}/users/u-1`, '{"endpoint":5}', /endpoint/],
    [`${prefix}/users/u-1`, '{"endpoint":"ftp://h:1"}', /http/],
    [`${prefix}/users/u-1`, '{"endpoint":"http://h:1?x"}', /query/],
    [`${prefix}/users/u-1`, '{"endpoint":"http://h:1","service":"orders"}', /does not match/],
    [`${prefix}/users/u-1`, '{"endpoint":"http://h:1","id":"u-9"}', /does not match/],
    [`${prefix}/users/u-1`, '{"endpoint":"http://h:1","agents":"echo"}', /agents/],
    [`${prefix}/users/u-1`, '{"endpoint":"http://h:1","agents":[".."]}', /agents/],
    [`${prefix}/users/u-1`, '{"endpoint":"http://h:1","metadata":[1]}', /metadata/],
    [`${prefix}/users`, '{"endpoint":"http://h:1"}', /expected a key/],
    [`${prefix}/users/`, '{"endpoint":"http://h:1"}', /expected a key/],
    ["/elsewhere/users/u-1", '{"endpoint":"http://h:1"}', /not under/],
  ])("reports %s = %s as a problem, never throws", (key, value, problem) => {
    const decoded = decodeInstance(prefix, key, value);
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.problem).toMatch(problem);
  });
});
