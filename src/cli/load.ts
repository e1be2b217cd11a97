import { formatDiagnostic } from "../pipeline/diagnostics.js";
import { type LoadOptions, loadPipeline } from "../pipeline/loader.js";
import { loadServices, type ServicesOptions } from "../pipeline/services-file.js";
import { count } from "../pipeline/text.js";
import type { Diagnostic, PipelineConfig, ServicesConfig } from "../pipeline/types.js";
import { UsageError } from "./exit-codes.js";

function warn(warnings: readonly Diagnostic[]): void {
  for (const w of warnings) process.stderr.write(`${formatDiagnostic(w, "warning")}\n`);
}

function fail(diagnostics: readonly Diagnostic[]): never {
  for (const d of diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
  const n = diagnostics.length;
  throw new UsageError(`${count(n, "problem")} found; nothing was called`);
}

/** Loads and validates a pipeline; warnings and problems go to stderr, and a problem exits 2. */
export async function loadPipelineOrThrow(file: string, options: LoadOptions): Promise<PipelineConfig> {
  const { pipeline, diagnostics, warnings } = await loadPipeline(file, options);
  warn(warnings);
  if (diagnostics.length > 0 || !pipeline) fail(diagnostics);
  return pipeline;
}

export async function loadServicesOrThrow(file: string, options?: ServicesOptions): Promise<ServicesConfig> {
  const { services, diagnostics, warnings } = await loadServices(file, options);
  warn(warnings);
  if (diagnostics.length > 0 || !services) fail(diagnostics);
  return services;
}
