import { pipelineSchemaJson } from "../../pipeline/schema.js";
import { EXIT } from "../exit-codes.js";

/** `agentctl schema`: the JSON Schema of pipeline files, the same one the validator uses. */
export function schemaCommand(): number {
  process.stdout.write(`${pipelineSchemaJson()}\n`);
  return EXIT.ok;
}
