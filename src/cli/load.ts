import { formatDiagnostic } from "../pipeline/diagnostics.js";
import { loadPipeline } from "../pipeline/loader.js";
import { loadServices } from "../pipeline/services-file.js";
import type { Diagnostic, PipelineConfig, ServicesConfig } from "../pipeline/types.js";
import { UsageError } from "./exit-codes.js";

function fail(diagnostics: readonly Diagnostic[]): never {
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  const n = diagnostics.length;
  throw new UsageError(`${n} problem${n === 1 ? "" : "s"} found; nothing was called`);
}

/** Loads and validates a pipeline; every problem goes to stderr and the command exits 2. */
export async function loadPipelineOrThrow(
  file: string,
  options: { vars?: Record<string, string>; services?: string; externalServices?: boolean },
): Promise<PipelineConfig> {
  const { pipeline, diagnostics } = await loadPipeline(file, options);
  if (diagnostics.length > 0 || !pipeline) fail(diagnostics);
  return pipeline;
}

export async function loadServicesOrThrow(file: string): Promise<ServicesConfig> {
  const { services, diagnostics } = await loadServices(file);
  if (diagnostics.length > 0 || !services) fail(diagnostics);
  return services;
}
