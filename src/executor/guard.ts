/**
 * What the executor does around a site's tasks when the run changes the
 * site: take the lock before the first task, and after the last (whatever
 * the outcome: success, failure, abort, Ctrl-C, a lost connection) append
 * the history record and release the lock.
 */
import { ConnectionError } from '../core/errors.ts';
import type { EventBus, SiteStatus } from '../core/events.ts';
import type { Redactor } from '../core/secret.ts';
import type { TaskDefinition } from '../config/define.ts';
import type { Transport } from '../transports/transport.ts';
import { recordAndRelease } from '../connection/finish.ts';
import { revisionFrom, type HistoryRecord } from '../connection/history.ts';
import { releaseLock, LOCK_PATH, type LockInfo } from '../connection/lock.ts';

/**
 * A run needs the lock when any of its per-site tasks does (`lock` defaults
 * to true). Run-once tasks run on the operator's machine and touch no site,
 * so they don't count.
 */
export function runNeedsLock(definitions: readonly TaskDefinition[]): boolean {
  return definitions.some((definition) => !definition.once && definition.lock !== false);
}

export interface FinishSite {
  site: string;
  info: LockInfo;
  /** The site's transport, used when it still works. */
  transport: Transport;
  /** A fresh connection (one that retries its handshake: SiteConnection.reopen()), for when the site's own was lost. */
  reconnect: () => Transport;
  /** Why the site's tasks ended, if they failed: a ConnectionError means its connection is gone. */
  error: unknown;
  outcome: SiteStatus;
  durationMs: number;
  failedTask?: string;
  errorMessage?: string;
  shared: ReadonlyMap<string, unknown>;
  bus: EventBus;
  redactor: Redactor;
}

/**
 * Append the history record and release the lock, over the site's own
 * connection or, when that one is unusable or fails in any way (lost, given
 * up after a stalled command, "Not connected"), a new one. Each attempt is
 * bounded in time. Never throws: a lock that cannot be released is
 * reported with the command that removes it.
 */
export async function finishSite(options: FinishSite): Promise<void> {
  const { site, info, bus } = options;
  const record: HistoryRecord = {
    time: info.since,
    operator: info.operator,
    revision: revisionFrom(options.shared, options.site),
    tasks: info.tasks,
    outcome: options.outcome,
    durationMs: options.durationMs,
    runId: info.runId,
    failedTask: options.failedTask,
    error: options.errorMessage === undefined ? undefined : options.redactor.redact(options.errorMessage),
  };
  let recorded = false;
  // Through the runner, each bounded in time: a server that stopped answering must not hold the run.
  const scripts = { site, bus, redactor: options.redactor, timeoutMs: BOOKKEEPING_TIMEOUT_MS };
  /** On the site's own connection any failure means "try a new one"; on the new one a history failure is only warned about. */
  const attempt = async (transport: Transport, last: boolean): Promise<void> => {
    if (recorded) {
      await releaseLock(transport, info.runId, scripts);
      return;
    }
    // One session for both: the record, then the release, whatever became of the record.
    const { historyError } = await recordAndRelease(transport, record, info.runId, scripts);
    if (historyError === undefined) recorded = true;
    else if (!last) throw new Error(historyError);
    else bus.emit({ type: 'log', site, level: 'warn', message: `history not recorded: ${historyError}` });
  };

  // The site's own connection, while it still works: a lost or given-up one
  // (a server that stopped answering) is not even tried.
  if (options.transport.usable !== false && !(options.error instanceof ConnectionError)) {
    try {
      await attempt(options.transport, false);
      return;
    } catch {
      // Whatever went wrong there (a lost connection, a stalled one, a plain
      // error), a new connection is the way to try again.
    }
  }
  const fresh = options.reconnect();
  try {
    await attempt(fresh, true);
  } catch (second) {
    bus.emit({ type: 'log', site, level: 'warn', message: unreleased(site, second) });
  } finally {
    await fresh.close().catch(() => undefined);
  }
}

/**
 * How long appending the history or releasing the lock may take on one
 * connection: a server that stopped answering must not hold the run (the
 * SSH transport then gives the connection up and a new one is tried).
 */
export const BOOKKEEPING_TIMEOUT_MS = 15_000;

function unreleased(site: string, error: unknown): string {
  return `could not release the deploy lock ~/${LOCK_PATH} of site ${site} (${error instanceof Error ? error.message : String(error)}); remove it with: deploy unlock ${site}`;
}
