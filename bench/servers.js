// Starts reference agent servers (`agentctl serve`) in their own processes, on loopback only.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../bin/agentctl.js", import.meta.url));

/** Resolves with { url, stop } once the server printed its `listening on` line. */
export function startServer(args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "serve", "--host", "127.0.0.1", "--port", "0", ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let buf = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("server did not start within 10 s"));
    }, 10_000);
    child.stdout.on("data", (d) => {
      buf += d;
      const m = /listening on (\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          stop: () =>
            new Promise((r) => {
              child.once("exit", r);
              child.kill("SIGTERM");
            }),
        });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening`));
    });
  });
}

export async function startServers(n, args = []) {
  return Promise.all(Array.from({ length: n }, () => startServer(args)));
}
