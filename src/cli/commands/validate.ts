import { count } from "../../pipeline/text.js";
import { EXIT } from "../exit-codes.js";
import { loadPipelineOrThrow } from "../load.js";

export interface ValidateFlags {
  services?: string;
  var?: Record<string, string>;
  registry?: string;
}

/** `agentctl validate`: every problem as `file:line:column: message` (exit 2), else one line. */
export async function validateCommand(file: string, flags: ValidateFlags): Promise<number> {
  const pipeline = await loadPipelineOrThrow(file, {
    vars: flags.var,
    services: flags.services,
    externalServices: flags.registry !== undefined,
  });
  const services = Object.keys(pipeline.services).length;
  process.stdout.write(
    `${file}: ok — pipeline "${pipeline.name}", ${count(pipeline.tasks.length, "task")}, ${count(services, "service")}\n`,
  );
  return EXIT.ok;
}
