/**
 * The deploy history of a site, kept on the server next to the lock, like
 * Capistrano's revisions.log: one JSON object per line in
 * `~/.deployfile/history.jsonl`, appended by every run that takes the lock,
 * read newest first by `deploy history <site>`.
 */
import type { SiteStatus } from '../core/events.ts';
import { runScript, type ScriptOptions } from './scripts.ts';
import type { Transport } from '../transports/transport.ts';

/** How the history scripts run: through the runner, with the run's bus, redactor, signal and a timeout. */
export type HistoryScriptOptions = Omit<ScriptOptions, 'label' | 'stdin'>;

/** Relative to the site user's home. */
export const HISTORY_PATH = '.deployfile/history.jsonl';

/**
 * `c.shared` keys a revision is read from, first found wins:
 * `deployfile.revision:<site>` for the revision a task checked out on that
 * site (the task library's `pull` sets it: sites of one run may come from
 * different working copies), then `deployfile.revision` for a run that
 * deploys one revision everywhere.
 *
 * @example c.shared.set(`deployfile.revision:${c.site.name}`, sha)
 */
export const REVISION_KEYS = ['deployfile.revision'] as const;

/** One line of the history file. */
export interface HistoryRecord {
  /** ISO 8601 time the site's run started. */
  time: string;
  operator: string;
  revision?: string;
  tasks: string[];
  outcome: SiteStatus;
  durationMs: number;
  runId: string;
  /** Where it went wrong, for failed and interrupted runs. */
  failedTask?: string;
  error?: string;
}

/** The revision this run deployed, if a task said so. */
export function revisionFrom(shared: ReadonlyMap<string, unknown>, site?: string): string | undefined {
  for (const key of [...(site ? [`${REVISION_KEYS[0]}:${site}`] : []), ...REVISION_KEYS]) {
    const value = shared.get(key);
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/**
 * The shell line that appends the line it reads on stdin (one record,
 * {@link historyLine}) to the history file, with builtins only once the
 * directory exists; `O_APPEND` writes of a line this short do not
 * interleave. Run at the end of each site, before the lock's release
 * (connection/finish.ts).
 */
export const APPEND_HISTORY_SCRIPT = `umask 077; { [ -d "$HOME"/.deployfile ] || mkdir -p "$HOME"/.deployfile; } && IFS= read -r line && printf '%s\\n' "$line" >> "$HOME"/${HISTORY_PATH}`;

/** One record as its line in the file: one line, and short, since a long error would make the file hard to read with tail. */
export function historyLine(record: HistoryRecord): string {
  return `${JSON.stringify({ ...record, error: record.error?.split('\n')[0]?.slice(0, 500) })}\n`;
}

/** The last `limit` records, newest first; lines that do not parse are skipped. */
export async function readHistory(transport: Transport, limit: number, options: HistoryScriptOptions = {}): Promise<HistoryRecord[]> {
  const n = Math.max(1, Math.floor(limit));
  const { exitCode, stdout, stderr } = await runScript(transport, `f="$HOME"/${HISTORY_PATH}; if [ -f "$f" ]; then echo deployfile-history; tail -n ${n} "$f"; fi`, {
    ...options,
    label: `read ~/${HISTORY_PATH}`,
  });
  if (exitCode !== 0) throw new Error(`could not read ~/${HISTORY_PATH} on ${transport.target}: ${stderr.slice(-2000).trim() || `exit code ${exitCode}`}`);
  const at = stdout.indexOf('deployfile-history\n');
  if (at < 0) return [];
  return parseHistory(stdout.slice(at + 'deployfile-history\n'.length)).reverse();
}

/** Parse history lines, oldest first as in the file. */
export function parseHistory(text: string): HistoryRecord[] {
  const records: HistoryRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const value = JSON.parse(line) as Partial<HistoryRecord>;
      if (value && typeof value.time === 'string' && Array.isArray(value.tasks)) records.push(value as HistoryRecord);
    } catch {
      // a line cut short by a full disk, or written by hand
    }
  }
  return records;
}
