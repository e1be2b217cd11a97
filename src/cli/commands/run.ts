import { writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { Client } from "../../client/client.js";
import { Coordinator } from "../../coordinator/coordinator.js";
import { AgentctlError } from "../../errors.js";
import { makeDirSync } from "../../make-dir.js";
import { describePlan, planDocument, planPipeline } from "../../pipeline/planner.js";
import { count } from "../../pipeline/text.js";
import type { PipelineConfig } from "../../pipeline/types.js";
import type { RegistrySource } from "../../registry/etcd-source.js";
import { JournalError, journaledVars } from "../../run/journal.js";
import { combineObservers } from "../../run/observer.js";
import { Redactor } from "../../run/redact.js";
import { jsonChunks } from "../../run/reporters/json.js";
import { formatJunit } from "../../run/reporters/junit.js";
import { formatTable } from "../../run/reporters/table.js";
import { runPipeline } from "../../run/runner.js";
import { envSecrets } from "../../run/secrets.js";
import { prepareServices, type ResolvedServices } from "../../run/services.js";
import { openSession, type RunSession } from "../../run/session.js";
import type { RunReport } from "../../run/types.js";
import { EXIT, UsageError, usageOnConfigError } from "../exit-codes.js";
import { collectGarbage } from "../gc.js";
import { createIo, type Io } from "../io.js";
import { loadPipelineOrThrow } from "../load.js";
import { spinnerObserver, verboseObserver } from "../progress.js";
import { onSignals } from "../signals.js";

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

const STATE_DIR = ".agentctl";

/** Pipeline files above this size (64 KiB) are worth a garbage collection after parsing. */
const LARGE_FILE = 64 * 1024;

/** `agentctl run`: files → config → registry → coordinator → report → printers. */
export async function runCommand(file: string, flags: RunFlags): Promise<number> {
  if (flags.force && flags.resume === undefined) throw new UsageError("--force only goes with --resume");
  const io = createIo(!flags.color);
  const stateDir = flags.stateDir ?? STATE_DIR;
  const pipeline = await loadPipelineOrThrow(file, {
    vars: flags.var,
    // Resumed without --var: the run keeps its vars, which validation must know.
    resumedVars:
      flags.resume !== undefined && flags.var === undefined
        ? journaledVars(stateDir, flags.resume)
        : undefined,
    services: flags.services,
    externalServices: flags.registry !== undefined,
    servicesRequired: flags.registry === undefined,
    env: process.env,
  });
  if (pipeline.source.length > LARGE_FILE) collectGarbage();
  const redactor = new Redactor();
  redactor.add(...envSecrets(pipeline, process.env));
  const redact = (s: string) => redactor.redact(s);

  const services = await usageOnConfigError(() =>
    prepareServices(pipeline.services, {
      env: process.env,
      redactor,
      // With a registry, instances come from etcd; the services file only gives settings.
      registerInstances: flags.registry === undefined,
      defaults: {
        timeoutMs: flags.timeout ?? pipeline.timeoutMs,
        maxResponseBytes: pipeline.maxResponseBytes,
        loadBalancing: pipeline.loadBalancing,
        circuitBreaker: pipeline.circuitBreaker,
      },
    }),
  );
  const source =
    flags.registry === undefined
      ? undefined
      : await followRegistry(
          flags.registry,
          services,
          [...new Set(pipeline.tasks.map((t) => t.service))],
          io,
        );
  const breaker = pipeline.circuitBreaker;
  const client = new Client({
    maxResponseBytes: pipeline.maxResponseBytes,
    circuitBreaker: breaker ? { maxFailures: breaker.maxFailures, timeout: breaker.openForMs } : undefined,
  });
  const coordinator = new Coordinator(services.registry, client, {
    maxConcurrency: flags.concurrency ?? pipeline.concurrency ?? 16,
    retries: flags.retries ?? pipeline.retries ?? 2,
    loadBalancing: pipeline.loadBalancing,
    timeout: flags.timeout ?? pipeline.timeoutMs ?? 60_000,
    services: services.policies,
  });
  let session: RunSession | undefined;
  let report: RunReport | undefined;
  // From the first health probe on, a signal cancels the run (its result is still printed).
  const interrupt = interruptOnSignals(io, flags.quiet);
  let code: number;
  try {
    code = await (async (): Promise<number> => {
      // The journal first: an unknown, changed or busy run to resume is a usage error (exit 2)
      // before anything is called, health checks included.
      if (!flags.dryRun) {
        session = openRunSession(pipeline, flags, stateDir, redactor);
        const resumed = session.resume
          ? ` (resumed: ${count(session.resume.done.size, "task")} already done)`
          : "";
        // As soon as the journal exists, even with --quiet: the id is what a user needs to resume
        // a run that dies (the health probes may take seconds).
        io.err(
          io.color.dim(
            `run ${session.runId}: ${pipeline.name}, ${count(pipeline.tasks.length, "task")}${resumed}`,
          ),
        );
      }
      const used = [...new Set(pipeline.tasks.map((t) => t.service))];
      const probes = await coordinator.checkHealth(used, { signal: interrupt.signal });
      // Interrupted, the probes were cancelled: that says nothing of the instances.
      for (const p of interrupt.signal.aborted ? [] : probes.filter((r) => !r.healthy)) {
        const why = p.error instanceof Error ? p.error.message : String(p.error);
        io.err(
          io.color.yellow(
            redact(
              `warning: ${p.instance.serviceName}/${p.instance.id} (${p.instance.endpoint}) is unhealthy: ${why}`,
            ),
          ),
        );
      }
      if (session === undefined) {
        // --dry-run
        if (interrupt.signal.aborted) return EXIT.interrupted;
        const plan = planPipeline(pipeline);
        io.out(
          redact(
            flags.output === "json"
              ? JSON.stringify(planDocument(plan), null, 2)
              : describePlan(plan).join("\n"),
          ),
        );
        return EXIT.ok;
      }
      const outcome = await execute(session, coordinator, flags, io, redactor, interrupt);
      report = outcome.report;
      return outcome.code;
    })();
  } finally {
    session?.finish(report);
    coordinator.close();
    await client.close();
    await source?.close();
    await services.close();
    interrupt.dispose();
  }
  // A signal is an interrupt up to the end, cleanup included: exit 130, as the message said.
  return interrupt.signal.aborted ? EXIT.interrupted : code;
}

function openRunSession(
  pipeline: PipelineConfig,
  flags: RunFlags,
  stateDir: string,
  redactor: Redactor,
): RunSession {
  try {
    return openSession({
      pipeline,
      stateDir,
      redactor,
      resume: flags.resume,
      force: flags.force,
      varsGiven: flags.var !== undefined,
    });
  } catch (err) {
    if (err instanceof JournalError) throw new UsageError(err.message);
    throw err;
  }
}

interface Interrupt {
  signal: AbortSignal;
  /** The run is over: a signal from now on only makes the exit code 130. */
  runOver(): void;
  dispose(): void;
}

/**
 * SIGINT/SIGTERM abort the run: calls in flight are aborted, unfinished tasks cancelled, the
 * result printed, exit 130. A second SIGINT means "now": no result, no cleanup.
 */
function interruptOnSignals(io: Io, quiet: boolean | undefined): Interrupt {
  const controller = new AbortController();
  let signals = 0;
  let over = false;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(EXIT.interrupted);
    const doing = over ? "the run is over, finishing its output" : "cancelling unfinished tasks";
    if (!quiet) io.err(io.color.yellow(`\n${sig}: ${doing} (again to exit at once)`));
    controller.abort();
  };
  onSignals(onSignal);
  return {
    signal: controller.signal,
    runOver: () => {
      over = true;
    },
    dispose: () => onSignals(),
  };
}

/** `--registry`: instances from etcd, followed live, into the same registry the file would fill. */
async function followRegistry(
  url: string,
  services: ResolvedServices,
  used: readonly string[],
  io: Io,
): Promise<RegistrySource> {
  const { watchEtcdRegistry } = await import("../../registry/etcd-source.js");
  try {
    const source = await watchEtcdRegistry(url, services.registry, {
      onWarning: (m) => io.err(io.color.yellow(m)),
    });
    // Not fatal (instances may register while the run goes on), but almost always a wrong prefix.
    const missing = used.filter((s) => !services.registry.hasService(s));
    if (missing.length > 0) {
      io.err(io.color.yellow(`warning: no instances of ${missing.join(", ")} in ${url} (yet)`));
    }
    return source;
  } catch (err) {
    await services.close();
    // Nothing was called yet: a bad URL or an unreachable etcd is a setup problem (exit 2).
    if (err instanceof AgentctlError) throw new UsageError(`registry ${url}: ${err.message}`);
    throw err;
  }
}

async function execute(
  session: RunSession,
  coordinator: Coordinator,
  flags: RunFlags,
  io: Io,
  redactor: Redactor,
  interrupt: Interrupt,
): Promise<{ code: number; report: RunReport }> {
  const redact = (s: string) => redactor.redact(s);
  const { pipeline, runId } = session;
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
      window: flags.concurrency ?? pipeline.concurrency ?? 16,
      observer: combineObservers(
        session.journal,
        spinner,
        flags.verbose ? verboseObserver(io, redact) : undefined,
      ),
    });
  } finally {
    spinner?.stop();
  }
  interrupt.runOver();
  // Secrets out of every string first: formatting (escaping, cutting to a column) would hide
  // some of them from a search of the formatted text.
  const shown = redactor.redactValue(report);
  if (flags.output === "json") await io.outChunks(map(jsonChunks(shown), redact));
  else io.out(redact(formatTable(shown, { color: io.color, columns: io.columns })));
  const junitWritten = flags.junit === undefined || (await writeJunit(flags.junit, shown, io, redact));
  if (interrupt.signal.aborted) return { code: EXIT.interrupted, report };
  return { code: report.status === "succeeded" && junitWritten ? EXIT.ok : EXIT.failed, report };
}

/** `--junit FILE` (its directory made if missing); a file that cannot be written fails the run. */
async function writeJunit(file: string, report: RunReport, io: Io, redact: (s: string) => string) {
  try {
    makeDirSync(dirname(file));
    await writeFile(file, redact(formatJunit(report)));
    return true;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    io.err(io.color.red(redact(`agentctl: cannot write the JUnit report ${file}: ${why}`)));
    return false;
  }
}

function* map<T, U>(items: Iterable<T>, fn: (item: T) => U): Generator<U> {
  for (const item of items) yield fn(item);
}
