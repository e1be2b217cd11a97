import { existsSync } from "node:fs";
import type { PipelineConfig } from "../pipeline/types.js";
import {
  describeChanges,
  JournalError,
  JournalWriter,
  journalPath,
  pipelineHash,
  readJournal,
  resumeState,
  runIdentity,
} from "./journal.js";
import { LockHeldError } from "./lock.js";
import type { Redactor } from "./redact.js";
import { newRunId } from "./run-id.js";
import type { ResumeState } from "./runner.js";
import type { RunReport } from "./types.js";

export interface SessionOptions {
  pipeline: PipelineConfig;
  /** Where journals live (`.agentctl` by default, relative to the current directory). */
  stateDir: string;
  redactor: Redactor;
  /** Resume this run id instead of starting a new run. */
  resume?: string;
  /** Resume even though the pipeline changed. */
  force?: boolean;
  /** Whether `--var` was given; if not, a resumed run keeps the vars it was started with. */
  varsGiven?: boolean;
}

/** A run with its journal open (and locked): fresh, or resumed from an earlier journal. */
export interface RunSession {
  runId: string;
  pipeline: PipelineConfig;
  journal: JournalWriter;
  resume?: ResumeState;
  /** Appends the run's end and releases the journal. */
  finish(report: RunReport | undefined): void;
}

/**
 * Opens the journal of a new run, or validates and reopens that of an interrupted one.
 * Throws JournalError for anything the user must fix (unknown id, corrupt journal, changed
 * pipeline without `force`, a run already in progress).
 */
export function openSession(options: SessionOptions): RunSession {
  let { pipeline } = options;
  let runId: string;
  let resume: ResumeState | undefined;
  let journal: JournalWriter;
  if (options.resume === undefined) {
    runId = newRunId();
    journal = lock(() => JournalWriter.open(options.stateDir, runId, options.redactor), runId);
    const { hash, tasks } = pipelineHash(pipeline);
    journal.append({
      type: "run",
      v: 1,
      run_id: runId,
      pipeline: pipeline.name,
      file: pipeline.file,
      hash,
      tasks,
      vars: pipeline.vars,
      ...secretVars(pipeline.vars, options.redactor),
      started_at: new Date().toISOString(),
    });
  } else {
    runId = options.resume;
    if (!/^[A-Za-z0-9_.-]+$/.test(runId) || !existsSync(journalPath(options.stateDir, runId))) {
      throw new JournalError(
        `unknown run id ${JSON.stringify(runId)} (no journal in ${options.stateDir}/runs; see \`agentctl runs\`)`,
      );
    }
    // Lock first, then read: what another process appended before releasing it is seen here.
    journal = lock(() => JournalWriter.open(options.stateDir, runId, options.redactor), runId);
    try {
      const contents = readJournal(journal.path);
      const identity = runIdentity(contents);
      if (!options.varsGiven) {
        // The journal keeps no secret: a var that held one cannot be restored from it.
        const masked = identity.secret_vars ?? [];
        if (masked.length > 0) {
          throw new JournalError(
            `run ${runId} has vars that held secrets (${masked.join(", ")}), which its journal does not keep: give the run's vars again with --var`,
          );
        }
        pipeline = { ...pipeline, vars: { ...identity.vars } };
      }
      // The journal's vars are redacted: so are these, to compare like with like.
      const changes = describeChanges(identity, pipeline, options.redactor.redactValue(pipeline.vars));
      if (changes !== undefined && !options.force) {
        // Most likely the wrong run id, or the wrong file: say whose run it is.
        const other =
          identity.pipeline !== undefined && identity.pipeline !== pipeline.name
            ? ` (it is a run of pipeline ${JSON.stringify(identity.pipeline)}, not ${JSON.stringify(pipeline.name)}: is it the right run id?)`
            : "";
        throw new JournalError(
          `the pipeline changed since run ${runId} started${other}: ${changes}. Resume anyway with --force.`,
        );
      }
      const at = new Date().toISOString();
      // Forced, the run becomes a run of this pipeline: later resumes compare with it.
      journal.append(
        changes === undefined
          ? { type: "resume", at, forced: false }
          : {
              type: "resume",
              at,
              forced: true,
              pipeline: pipeline.name,
              file: pipeline.file,
              ...pipelineHash(pipeline),
              vars: pipeline.vars,
              ...secretVars(pipeline.vars, options.redactor),
            },
      );
      resume = resumeState(contents, pipeline);
    } catch (err) {
      journal.close();
      throw err;
    }
  }
  return {
    runId,
    pipeline,
    journal,
    resume,
    finish: (report) => {
      if (report)
        journal.append({
          type: "run_end",
          at: new Date().toISOString(),
          status: report.status,
          summary: report.summary,
        });
      journal.close();
    },
  };
}

/** `{ secret_vars }` naming the vars the journal will hold as `***`, if any. */
function secretVars(vars: Record<string, unknown>, redactor: Redactor): { secret_vars?: string[] } {
  const names = Object.keys(vars).filter((k) => redactor.redactValue(vars[k]) !== vars[k]);
  return names.length > 0 ? { secret_vars: names } : {};
}

function lock(open: () => JournalWriter, runId: string): JournalWriter {
  try {
    return open();
  } catch (err) {
    if (err instanceof LockHeldError) {
      throw new JournalError(
        err.pid > 0
          ? `run ${runId} is in progress in process ${err.pid}`
          : `run ${runId} is being resumed by another process`,
      );
    }
    throw err;
  }
}
