import { Command, CommanderError, Option } from "commander";
import { VERSION } from "../version.js";
import { EXIT, UsageError } from "./exit-codes.js";
import {
  durationArg,
  fractionArg,
  nonNegativeIntArg,
  outputArg,
  portArg,
  positiveIntArg,
  varArg,
} from "./options.js";

/**
 * The command line: parses flags and hands them to one command module each, loaded only when
 * that command runs (startup time matters for `--version` and `validate`). Returns the exit code.
 */
export async function main(argv: readonly string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command("agentctl")
    .description("Run pipelines of AI-agent calls across goagent-compatible HTTP agent services.")
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });

  program
    .command("run")
    .description("run a pipeline file")
    .argument("<pipeline>", "pipeline YAML file")
    .option("--services <file>", "services file (overrides the pipeline's `services`)")
    .option("--registry <url>", "read instances from etcd: etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")
    .option("--var <k=v>", "set a pipeline variable (repeatable)", varArg)
    .option("--concurrency <n>", "agent calls in flight at most (default 16)", positiveIntArg)
    .option("--retries <n>", "retries per task (default 2)", nonNegativeIntArg)
    .option("--timeout <dur>", "timeout of one attempt (default 60s)", durationArg)
    .option("--deadline <dur>", "bound on the whole run", durationArg)
    .addOption(new Option("--output <format>", "table or json").default("table").argParser(outputArg))
    .option("--junit <file>", "also write a JUnit XML report to FILE")
    .option("--resume <run-id>", "resume an interrupted run")
    .option("--force", "resume even if the pipeline file changed")
    .option("--state-dir <dir>", "where run journals live (default .agentctl)")
    .option("--dry-run", "validate, resolve the registry and print the plan; call no agent")
    .option("-q, --quiet", "no progress on stderr")
    .option("-v, --verbose", "log every attempt to stderr")
    .option("--no-color", "no colours")
    .action(async (pipeline: string, opts) => {
      const { runCommand } = await import("./commands/run.js");
      code = await runCommand(pipeline, opts);
    });

  program
    .command("ping")
    .description("check the health of agent service instances")
    .argument("[endpoint...]", "instance base URLs")
    .option("--services <file>", "ping every instance in a services file")
    .option("--registry <url>", "ping every instance in etcd: etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")
    .option("--timeout <dur>", "timeout of each probe (default 2s)", durationArg)
    .addOption(new Option("--output <format>", "table or json").default("table").argParser(outputArg))
    .option("--no-color", "no colours")
    .action(async (endpoints: string[], opts) => {
      const { pingCommand } = await import("./commands/ping.js");
      code = await pingCommand(endpoints, opts);
    });

  program
    .command("list-agents")
    .description("list the agents that instances serve")
    .argument("[endpoint...]", "instance base URLs")
    .option("--services <file>", "ask every instance in a services file")
    .option("--registry <url>", "ask every instance in etcd: etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")
    .addOption(new Option("--output <format>", "table or json").default("table").argParser(outputArg))
    .option("--no-color", "no colours")
    .action(async (endpoints: string[], opts) => {
      const { listAgentsCommand } = await import("./commands/list-agents.js");
      code = await listAgentsCommand(endpoints, opts);
    });

  program
    .command("validate")
    .description("check a pipeline file (and its services file); call nothing")
    .argument("<pipeline>", "pipeline YAML file")
    .option("--services <file>", "services file (overrides the pipeline's `services`)")
    .option("--var <k=v>", "set a pipeline variable (repeatable)", varArg)
    .option("--registry <url>", "services come from etcd at run time: do not require them in files")
    .action(async (pipeline: string, opts) => {
      const { validateCommand } = await import("./commands/validate.js");
      code = await validateCommand(pipeline, opts);
    });

  program
    .command("runs")
    .description("list recent runs (to find the id to --resume)")
    .option("--state-dir <dir>", "where run journals live (default .agentctl)")
    .option("--limit <n>", "how many runs to show", positiveIntArg, 20)
    .addOption(new Option("--output <format>", "table or json").default("table").argParser(outputArg))
    .option("--no-color", "no colours")
    .action(async (opts) => {
      const { runsCommand } = await import("./commands/runs.js");
      code = runsCommand(opts);
    });

  program
    .command("schema")
    .description("print the JSON Schema of pipeline files")
    .action(async () => {
      const { schemaCommand } = await import("./commands/schema.js");
      code = schemaCommand();
    });

  program
    .command("serve")
    .description("run the reference agent server (built-in deterministic agents)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port (0: any free port)", portArg, 8080)
    .option("--agents <list>", "comma list of built-in agents to serve (default all)")
    .option("--latency <dur>", "delay added to every agent call", durationArg)
    .option("--fail-rate <p>", "share of agent calls answered 503 (0 to 1)", fractionArg)
    .option(
      "--register <url>",
      "register in etcd under a 10 s lease: etcd://HOST:PORT[,HOST:PORT...][/PREFIX]",
    )
    .option("--service <name>", "service name to register under (required with --register)")
    .option("--id <id>", "instance id to register (default: <service>-<host>-<port>)")
    .action(async (opts) => {
      const { serveCommand } = await import("./commands/serve.js");
      code = await serveCommand(opts);
    });

  try {
    await program.parseAsync([...argv], { from: "user" });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every parse problem is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`agentctl: ${err.message}\n`);
      return EXIT.usage;
    }
    throw err;
  }
}
