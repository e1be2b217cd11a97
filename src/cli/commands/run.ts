import { writeFile } from "node:fs/promises";
import { Client } from "../../client/client.js";
import { Coordinator } from "../../coordinator/coordinator.js";
import { describePlan, planPipeline } from "../../pipeline/planner.js";
import { JournalError } from "../../run/journal.js";
import { combineObservers } from "../../run/observer.js";
import { Redactor } from "../../run/redact.js";
import { formatJson } from "../../run/reporters/json.js";
import { formatJunit } from "../../run/reporters/junit.js";
import { formatTable } from "../../run/reporters/table.js";
import { runPipeline } from "../../run/runner.js";
import { envSecrets } from "../../run/secrets.js";
import { prepareServices } from "../../run/services.js";
import { openSession, type RunSession } from "../../run/session.js";
import type { RunReport } from "../../run/types.js";
import { EXIT, UsageError } from "../exit-codes.js";
import { createIo, type Io } from "../io.js";
import { loadPipelineOrThrow } from "../load.js";
import { spinnerObserver, verboseObserver } from "../progress.js";

export interface RunFlags {
  services?: string;
  registry?: string;
  var?: Record<string, string>;
  concurrency?: number;
  retries?: number;
  timeout?: number;
  deadline?: number;
  output: "table" | "json";
  junit?: string;
  resume?: string;
  force?: boolean;
  stateDir?: string;
  dryRun?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color: boolean;
}

/** `agentctl run`: files → config → registry → coordinator → report → printers. */
export async function runCommand(file: string, flags: RunFlags): Promise<number> {
  if (flags.registry !== undefined) throw new UsageError("--registry is not yet supported in this version");
  if (flags.force && flags.resume === undefined) throw new UsageError("--force only goes with --resume");
  const io = createIo(!flags.color);
  const pipeline = await loadPipelineOrThrow(file, { vars: flags.var, services: flags.services });
  const redactor = new Redactor();
  redactor.add(...envSecrets(pipeline, process.env));
  const redact = (s: string) => redactor.redact(s);

  const services = await prepareServices(pipeline.services, {
    env: process.env,
    redactor,
    defaults: {
      timeoutMs: flags.timeout ?? pipeline.timeoutMs,
      maxResponseBytes: pipeline.maxResponseBytes,
      loadBalancing: pipeline.loadBalancing,
      circuitBreaker: pipeline.circuitBreaker,
    },
  });
  const client = new Client({ maxResponseBytes: pipeline.maxResponseBytes });
  const coordinator = new Coordinator(services.registry, client, {
    maxConcurrency: flags.concurrency ?? pipeline.concurrency ?? 16,
    retries: flags.retries ?? pipeline.retries ?? 2,
    loadBalancing: pipeline.loadBalancing,
    timeout: flags.timeout ?? pipeline.timeoutMs ?? 60_000,
    services: services.policies,
  });
  let session: RunSession | undefined;
  let report: RunReport | undefined;
  try {
    const used = [...new Set(pipeline.tasks.map((t) => t.service))];
    const probes = await coordinator.checkHealth(used);
    for (const p of probes.filter((r) => !r.healthy)) {
      const why = p.error instanceof Error ? p.error.message : String(p.error);
      io.err(
        io.color.yellow(
          redact(
            `warning: ${p.instance.serviceName}/${p.instance.id} (${p.instance.endpoint}) is unhealthy: ${why}`,
          ),
        ),
      );
    }
    if (flags.dryRun) {
      io.out(redact(describePlan(planPipeline(pipeline)).join("\n")));
      return EXIT.ok;
    }
    try {
      session = openSession({
        pipeline,
        stateDir: flags.stateDir ?? ".agentctl",
        redactor,
        resume: flags.resume,
        force: flags.force,
        varsGiven: flags.var !== undefined,
      });
    } catch (err) {
      if (err instanceof JournalError) throw new UsageError(err.message);
      throw err;
    }
    const resumed = session.resume ? ` (resumed: ${session.resume.done.size} tasks already done)` : "";
    if (!flags.quiet)
      io.err(
        io.color.dim(`run ${session.runId}: ${pipeline.name}, ${pipeline.tasks.length} tasks${resumed}`),
      );
    const outcome = await execute(session, coordinator, flags, io, redact);
    report = outcome.report;
    return outcome.code;
  } finally {
    session?.finish(report);
    coordinator.close();
    await client.close();
    await services.close();
  }
}

async function execute(
  session: RunSession,
  coordinator: Coordinator,
  flags: RunFlags,
  io: Io,
  redact: (s: string) => string,
): Promise<{ code: number; report: RunReport }> {
  const { pipeline, runId } = session;
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    // A second Ctrl-C means "now": no result, no cleanup.
    if (signals > 1) process.exit(EXIT.interrupted);
    if (!flags.quiet)
      io.err(io.color.yellow(`\n${sig}: cancelling unfinished tasks (again to exit at once)`));
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const spinner = io.interactive && !flags.quiet ? await spinnerObserver(pipeline.tasks.length) : undefined;
  let report: RunReport;
  try {
    report = await runPipeline(pipeline, coordinator, {
      runId,
      retries: flags.retries,
      timeoutMs: flags.timeout,
      deadlineMs: flags.deadline,
      signal: interrupt.signal,
      env: process.env,
      resume: session.resume,
      observer: combineObservers(
        session.journal,
        spinner,
        flags.verbose ? verboseObserver(io, redact) : undefined,
      ),
    });
  } finally {
    spinner?.stop();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  if (flags.output === "json") io.out(redact(formatJson(report)));
  else io.out(redact(formatTable(report, { color: io.color, columns: io.columns })));
  if (flags.junit !== undefined) await writeFile(flags.junit, redact(formatJunit(report)));
  if (interrupt.signal.aborted) return { code: EXIT.interrupted, report };
  return { code: report.status === "succeeded" ? EXIT.ok : EXIT.failed, report };
}
