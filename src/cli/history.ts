import { formatDuration } from '../core/duration.ts';
import { EXIT, UsageError } from '../core/errors.ts';
import { HISTORY_PATH, readHistory, type HistoryRecord } from '../connection/history.ts';
import { style, useColor, type Style } from '../views/style.ts';
import { withSite } from './site-connection.ts';
import { reportFatal } from './report.ts';

/**
 * `deploy history <site>`: the site's runs, newest first, from the
 * `~/.deployfile/history.jsonl` deploys append to on the server.
 */
export async function historyCommand(siteName: string, flags: { file?: string; limit?: string; json?: boolean }, out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Promise<number> {
  const limit = flags.limit === undefined ? 20 : Number(flags.limit);
  if (!Number.isInteger(limit) || limit < 1) return reportFatal(new UsageError(`--limit: expected a whole number of at least 1, got "${flags.limit}"`));
  return withSite(siteName, flags, async (site, transport) => {
    const records = await readHistory(transport, limit);
    if (flags.json) {
      for (const record of records) out.write(`${JSON.stringify(record)}\n`);
    } else if (records.length === 0) {
      out.write(`no deploys recorded for site ${site.name} (no ~/${HISTORY_PATH} on ${transport.target})\n`);
    } else {
      out.write(`${renderHistory(records, style(useColor(out)))}\n`);
    }
    return EXIT.ok;
  });
}

/**
 * The history as a table, rows in the order given (newest first).
 *
 * @example
 * time                  operator      revision      tasks         outcome  duration
 * 2025-05-01 10:02:03Z  alice@laptop  3f2a9c1d7e0b  push, deploy  ok       41.2s
 */
export function renderHistory(records: readonly HistoryRecord[], s: Style): string {
  const rows = records.map((r) => [
    r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.operator,
    r.revision ? r.revision.slice(0, 12) : '-',
    r.tasks.join(', '),
    r.outcome + (r.outcome !== 'ok' && r.failedTask ? ` at ${r.failedTask}` : ''),
    formatDuration(r.durationMs),
  ]);
  const header = ['time', 'operator', 'revision', 'tasks', 'outcome', 'duration'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]): string => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  ');
  return [
    s.dim(line(header)),
    ...rows.map((row, i) => {
      const text = line(row);
      return records[i]?.outcome === 'ok' ? text : s.red(text);
    }),
  ].join('\n');
}
