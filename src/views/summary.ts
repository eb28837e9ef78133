import { formatDuration } from '../core/duration.ts';
import type { SiteSummary } from '../core/events.ts';
import type { Style } from './style.ts';

/**
 * A row's result in words: `ok`, `failed at deploy: git pull --ff-only`,
 * `failed at connect: could not connect to ...`, `skipped`, `not started`.
 */
export function describeResult(row: SiteSummary): string {
  switch (row.status) {
    case 'ok': {
      const skipped = row.failuresSkipped?.length ?? 0;
      return skipped === 0 ? 'ok' : `ok, ${skipped} failure${skipped === 1 ? '' : 's'} skipped: ${row.failuresSkipped?.[0]}${skipped > 1 ? ', ...' : ''}`;
    }
    case 'not-started':
      return 'not started';
    case 'skipped':
      return 'skipped';
    default: {
      const at = row.failedTask ? ` at ${row.failedTask}` : '';
      const what = row.failedCommand ? `: ${row.failedCommand}` : row.error ? `: ${row.error.split('\n')[0]}` : '';
      return `${row.status}${at}${what}`;
    }
  }
}

/**
 * For a site that stopped part-way, the tasks on either side of the one that
 * failed or was interrupted: `done: setup; never started: migrate, restart`.
 */
export function describeAccount(row: SiteSummary): string {
  if (row.status === 'ok' || row.status === 'not-started' || row.status === 'skipped') return '';
  const parts: string[] = [];
  if (row.tasksDone && row.tasksDone.length > 0) parts.push(`done: ${row.tasksDone.join(', ')}`);
  if (row.tasksNotRun && row.tasksNotRun.length > 0) parts.push(`never started: ${row.tasksNotRun.join(', ')}`);
  return parts.join('; ');
}

/** `19 ok, 1 failed, 30 not started`: the counts of each result, most useful first. */
export function countResults(rows: readonly SiteSummary[]): string {
  const order: SiteSummary['status'][] = ['ok', 'failed', 'aborted', 'interrupted', 'skipped', 'not-started'];
  return order
    .map((status) => [status, rows.filter((row) => row.status === status).length] as const)
    .filter(([status, n]) => n > 0 || status === 'ok')
    .map(([status, n]) => `${n} ${status === 'not-started' ? 'not started' : status}`)
    .join(', ');
}

/**
 * The end-of-run table shared by every human view: site, result, duration,
 * one row per selected site in deployfile order, under a line of counts.
 *
 * @example
 * Summary: 1 ok, 1 failed (2 sites)
 *   site     result                                duration
 *   alleged  ok                                    12.3s
 *   bravo    failed at deploy: git pull --ff-only  4.1s
 */
export function renderSummary(rows: readonly SiteSummary[], s: Style): string {
  if (rows.length === 0) return '';
  const results = rows.map(describeResult);
  const siteWidth = Math.max(4, ...rows.map((row) => row.site.length));
  const resultWidth = Math.min(80, Math.max(6, ...results.map((r) => r.length)));
  const lines = rows.map((row, i) => {
    const text = results[i] as string;
    const padded = text.length >= resultWidth ? text : text.padEnd(resultWidth);
    const colored = row.status === 'ok' ? (row.failuresSkipped?.length ? s.yellow(padded) : s.green(padded)) : row.status === 'not-started' || row.status === 'skipped' ? s.dim(padded) : s.red(padded);
    const took = row.status === 'not-started' ? '-' : formatDuration(row.durationMs);
    const main = `  ${row.site.padEnd(siteWidth)}  ${colored}  ${s.dim(took)}`;
    // Under the row: what the site got (c.report), then for a stopped site what ran and what did not.
    const below = [...(row.notes ?? []), describeAccount(row)].filter((text) => text !== '');
    return [main, ...below.map((text) => `  ${' '.repeat(siteWidth)}  ${s.dim(text)}`)].join('\n');
  });
  return [
    s.bold(`Summary: ${countResults(rows)} (${rows.length} site${rows.length === 1 ? '' : 's'})`),
    s.dim(`  ${'site'.padEnd(siteWidth)}  ${'result'.padEnd(resultWidth)}  duration`),
    ...lines,
  ].join('\n');
}
