/**
 * Why a run stopped before its end, carried as the reason of the run's
 * AbortSignal: a signal to the `deploy` process (Ctrl-C, a cancelled CI
 * job, a closed terminal), or the run's deadline. Every stop ends the
 * running commands, starts nothing new, releases the locks, writes the
 * history and prints the summary; they differ in what the summary calls the
 * sites and in the exit code.
 */
import { constants } from 'node:os';
import { formatDuration } from '../core/duration.ts';
import { EXIT, InterruptedError } from '../core/errors.ts';

/** The signals `deploy run` ends a run on, like a first Ctrl-C. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

export type RunStop =
  /** A signal to the deploy process: the sites it cut short are `interrupted`, exit 128 + the signal's number. */
  | { kind: 'signal'; signal: StopSignal; exitCode: number }
  /** `--deadline`: the sites it cut short have `failed`, exit 1. */
  | { kind: 'deadline'; ms: number };

/**
 * The exit code a shell reports for a process killed by `signal`: 128 + its
 * number (SIGHUP 129, SIGINT 130, SIGTERM 143), so CI and scripts read a
 * cancelled deploy the same whether it was killed or stopped cleanly.
 *
 * @example signalExitCode('SIGTERM') // 143
 */
export function signalExitCode(signal: StopSignal): number {
  return 128 + constants.signals[signal];
}

/** @example controller.abort(signalStop('SIGTERM')) */
export function signalStop(signal: StopSignal): RunStop {
  return { kind: 'signal', signal, exitCode: signalExitCode(signal) };
}

/** @example controller.abort(deadlineStop(600_000)) */
export function deadlineStop(ms: number): RunStop {
  return { kind: 'deadline', ms };
}

/**
 * Why `signal` was aborted. A bare `abort()` (no reason, as library callers
 * and older tests do) reads as Ctrl-C.
 */
export function stopOf(signal: AbortSignal): RunStop | undefined {
  if (!signal.aborted) return undefined;
  const reason = signal.reason as Partial<RunStop> | undefined;
  if (reason && (reason.kind === 'signal' || reason.kind === 'deadline')) return reason as RunStop;
  return { kind: 'signal', signal: 'SIGINT', exitCode: EXIT.interrupted };
}

/** `3s`, `10m`, `1m30s`, as a user would have typed it; else formatDuration's `4.2s`. */
export function shortDuration(ms: number): string {
  if (ms % 1000 !== 0) return formatDuration(ms);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${sec || (!h && !m) ? `${sec}s` : ''}`;
}

/** `Ctrl-C (SIGINT)`, `SIGTERM`, `the run's deadline (10m)`: for messages. */
export function describeStop(stop: RunStop): string {
  if (stop.kind === 'deadline') return `the run's deadline (--deadline ${shortDuration(stop.ms)})`;
  return stop.signal === 'SIGINT' ? 'Ctrl-C (SIGINT)' : stop.signal;
}

/**
 * A task that was still pending when the run stopped although none of its
 * commands was running any more: awaiting something that never settles.
 * The site is let go (its lock released) without waiting for it.
 */
export class HungTaskError extends InterruptedError {
  constructor(
    readonly task: string,
    message: string,
  ) {
    super(message);
  }
}
