import { readFileSync } from "node:fs";

/**
 * The package version from package.json, found by walking up from this module: the same code
 * runs from src/ (tests), dist/ (the library) and the CLI bundle at different depths.
 */
function readVersion(): string {
  for (let dir = new URL(".", import.meta.url); ; dir = new URL("..", dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "agentctl" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // No package.json here: keep walking up.
    }
    if (dir.pathname === "/") return "0.0.0";
  }
}

export const VERSION: string = readVersion();

export const USER_AGENT = `agentctl/${VERSION}`;
