import type { PipelineConfig } from "../pipeline/types.js";

const ENV_REF = /\benv\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([^"']+)["']\s*\])/g;

/**
 * The values of every environment variable the pipeline (or its services) can read through
 * `env`: all of them are secrets, known before the first call so nothing can leak them.
 */
export function envSecrets(pipeline: PipelineConfig, env: Record<string, string | undefined>): string[] {
  const text = pipeline.source + JSON.stringify(Object.values(pipeline.services).map((s) => s.headers));
  const values: string[] = [];
  for (const m of text.matchAll(ENV_REF)) {
    const value = env[m[1] ?? m[2] ?? ""];
    if (value !== undefined) values.push(value);
  }
  return values;
}
