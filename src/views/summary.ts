import { formatDuration } from '../core/duration.ts';
import type { SiteSummary } from '../core/events.ts';
import type { Style } from './style.ts';

function describe(row: SiteSummary): string {
  switch (row.status) {
    case 'ok':
      return 'ok';
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

/** The end-of-run table: site, result, duration; shared by every human view. */
export function renderSummary(rows: readonly SiteSummary[], s: Style): string {
  if (rows.length === 0) return '';
  const width = Math.max(4, ...rows.map((row) => row.site.length));
  const lines = rows.map((row) => {
    const result = describe(row);
    const colored = row.status === 'ok' ? s.green(result) : row.status === 'not-started' || row.status === 'skipped' ? s.dim(result) : s.red(result);
    return `  ${row.site.padEnd(width)}  ${colored}  ${s.dim(formatDuration(row.durationMs))}`;
  });
  const ok = rows.filter((row) => row.status === 'ok').length;
  return [s.bold(`Summary: ${ok} of ${rows.length} site${rows.length === 1 ? '' : 's'} ok`), `  ${'site'.padEnd(width)}  result`, ...lines].join('\n');
}
