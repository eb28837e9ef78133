/**
 * The end of a site's run as one script, so it costs one SSH session, not
 * two: append the history record, then release the lock. The history line
 * arrives on stdin; a history that cannot be written does not keep the
 * lock from being released.
 */
import { APPEND_HISTORY_SCRIPT, HISTORY_PATH, historyLine, type HistoryRecord } from './history.ts';
import { LOCK_PATH, LOCK_RELEASED, releaseLockScript, scriptError } from './lock.ts';
import { runScript, type ScriptOptions } from './scripts.ts';
import type { Transport } from '../transports/transport.ts';

const RECORDED = 'deployfile-history-recorded';

export interface Finished {
  /** Undefined when the record was appended; else what the server said. */
  historyError?: string;
  released: boolean;
}

/**
 * Record, then release. Throws only when the release itself failed (or
 * the connection did); a record that could not be appended is reported in
 * `historyError`, for the caller to retry elsewhere or warn about.
 */
export async function recordAndRelease(transport: Transport, record: HistoryRecord, runId: string, options: Omit<ScriptOptions, 'label' | 'stdin'>): Promise<Finished> {
  const script = [`if { ${APPEND_HISTORY_SCRIPT}; }; then echo ${RECORDED}; fi`, releaseLockScript(runId)].join('\n');
  const result = await runScript(transport, script, { ...options, label: `append to ~/${HISTORY_PATH}, release the deploy lock ~/${LOCK_PATH}`, stdin: historyLine(record) });
  if (result.exitCode !== 0) throw scriptError(`release the deploy lock ~/${LOCK_PATH}`, transport.target, result);
  const recorded = result.stdout.includes(RECORDED);
  return {
    historyError: recorded ? undefined : `could not append to ~/${HISTORY_PATH} on ${transport.target}: ${result.stderr.slice(-2000).trim() || 'no reason given'}`,
    released: result.stdout.includes(LOCK_RELEASED),
  };
}
