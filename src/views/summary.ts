import { formatDuration } from '../core/duration.ts';
import type { SiteSummary } from '../core/events.ts';
import type { Style } from './style.ts';

/**
 * A row's result in two parts: the words (`failed at deploy`, `ok, 1 failure
 * skipped`) and the detail after them (the command, or the error's first
 * line), which can be as long as a command line.
 */
export function resultParts(row: SiteSummary): { head: string; detail?: string } {
  switch (row.status) {
    case 'ok': {
      const skipped = row.failuresSkipped?.length ?? 0;
      if (skipped === 0) return { head: 'ok' };
      return { head: `ok, ${skipped} failure${skipped === 1 ? '' : 's'} skipped`, detail: `${row.failuresSkipped?.[0]}${skipped > 1 ? ', ...' : ''}` };
    }
    case 'not-started':
      return { head: 'not started' };
    case 'skipped':
      return { head: 'skipped' };
    default: {
      const at = row.failedTask ? ` at ${row.failedTask}` : '';
      const detail = row.failedCommand ?? row.error?.split('\n')[0];
      return detail ? { head: `${row.status}${at}`, detail } : { head: `${row.status}${at}` };
    }
  }
}

/**
 * A row's result in words: `ok`, `failed at deploy: git pull --ff-only`,
 * `failed at connect: could not connect to ...`, `skipped`, `not started`.
 */
export function describeResult(row: SiteSummary): string {
  const { head, detail } = resultParts(row);
  return detail === undefined ? head : `${head}: ${detail}`;
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
 * A result too long for `width` keeps its words in the column and puts its
 * detail on a line of its own under them, so the durations stay aligned.
 *
 * @example
 * Summary: 1 ok, 1 failed (2 sites)
 *   site     result                                duration
 *   alleged  ok                                    12.3s
 *   bravo    failed at deploy: git pull --ff-only  4.1s
 */
export function renderSummary(rows: readonly SiteSummary[], s: Style, width = 100): string {
  if (rows.length === 0) return '';
  const siteWidth = Math.max(4, ...rows.map((row) => row.site.length));
  const took = rows.map((row) => (row.status === 'not-started' ? '-' : formatDuration(row.durationMs)));
  const tookWidth = Math.max(8, ...took.map((text) => text.length));
  // Two spaces before each column, and the last column left free: a full line wraps on some terminals.
  const room = Math.max(20, width - 1 - (2 + siteWidth + 2 + 2 + tookWidth));
  const cells = rows.map((row) => {
    const whole = describeResult(row);
    if (whole.length <= room) return { shown: whole, below: undefined };
    const { head, detail } = resultParts(row);
    return { shown: head.length <= room ? head : `${head.slice(0, room - 1)}…`, below: detail };
  });
  const resultWidth = Math.max(6, ...cells.map((cell) => cell.shown.length));
  const lines = rows.map((row, i) => {
    const { shown, below } = cells[i] as { shown: string; below?: string };
    const color = row.status === 'ok' ? (row.failuresSkipped?.length ? s.yellow : s.green) : row.status === 'not-started' || row.status === 'skipped' ? s.dim : s.red;
    const main = `  ${row.site.padEnd(siteWidth)}  ${color(shown.padEnd(resultWidth))}  ${s.dim(took[i] as string)}`;
    const indent = `  ${' '.repeat(siteWidth)}  `;
    // Under the row: the detail too long for the column, what the site got (c.report), then for a stopped site what ran and what did not.
    const notes = [...(row.notes ?? []), describeAccount(row)].filter((text) => text !== '');
    return [main, ...(below === undefined ? [] : [`${indent}${color(below)}`]), ...notes.map((text) => `${indent}${s.dim(text)}`)].join('\n');
  });
  return [
    s.bold(`Summary: ${countResults(rows)} (${rows.length} site${rows.length === 1 ? '' : 's'})`),
    s.dim(`  ${'site'.padEnd(siteWidth)}  ${'result'.padEnd(resultWidth)}  duration`),
    ...lines,
  ].join('\n');
}
