// Hand-written on purpose: `ms` (the one duration parser in node_modules)
// takes one unit per string ("1h30m" is NaN to it) and also accepts days,
// years and spelled-out words, so it would change what a deployfile may
// write; pretty-ms is not installed, and the two formats below are all views need.
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parse a duration such as `90s`, `10m`, `1h30m` or a number of milliseconds.
 *
 * @example
 * parseDuration('10m') // => 600000
 */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`invalid duration: ${value}`);
    return value;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new TypeError(`invalid duration ${JSON.stringify(value)}: use e.g. 500ms, 30s, 10m or 1h30m`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] as number), 0);
}

/** Human-friendly duration for views: 850ms, 4.2s, 3m05s. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes}m${String(seconds).padStart(2, '0')}s`;
}
