/**
 * The library's etcd entry points, loaded on first use: etcd3 brings gRPC (about 70 modules and
 * 200 ms to import), which only fleet mode needs, so `import "agentctl"` stays light.
 */
import type * as Registration from "./etcd-registration.js";
import type * as Source from "./etcd-source.js";

/** See {@link Registration.registerInEtcd}. */
export async function registerInEtcd(
  ...args: Parameters<typeof Registration.registerInEtcd>
): ReturnType<typeof Registration.registerInEtcd> {
  return (await import("./etcd-registration.js")).registerInEtcd(...args);
}

/** See {@link Source.watchEtcdRegistry}. */
export async function watchEtcdRegistry(
  ...args: Parameters<typeof Source.watchEtcdRegistry>
): ReturnType<typeof Source.watchEtcdRegistry> {
  return (await import("./etcd-source.js")).watchEtcdRegistry(...args);
}

/** See {@link Source.listEtcdInstances}. */
export async function listEtcdInstances(
  ...args: Parameters<typeof Source.listEtcdInstances>
): ReturnType<typeof Source.listEtcdInstances> {
  return (await import("./etcd-source.js")).listEtcdInstances(...args);
}
