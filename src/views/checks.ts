import type { EventOf } from '../core/events.ts';
import type { Style } from './style.ts';

type CheckEvent = EventOf<'check'>;

const MARK = { pass: '✔', warn: '!', fail: '✖' } as const;

/**
 * A check as the human views print it: the verdict, the name, what was found,
 * then the fix on a line of its own (and any further lines of the detail, a
 * traceback, indented under it).
 *
 * @example
 * checkLines({ status: 'fail', name: 'vassal ini owner', detail: 'root:root 0644', fix: 'chown shop:uwsgi ...' }, s)
 * // => ['✖ fail vassal ini owner: root:root 0644', '    fix: chown shop:uwsgi ...']
 */
export function checkLines(check: Pick<CheckEvent, 'status' | 'name' | 'detail' | 'fix'>, s: Style): string[] {
  const color = check.status === 'pass' ? s.green : check.status === 'warn' ? s.yellow : s.red;
  const [first, ...more] = check.detail.split('\n');
  const lines = [`${color(`${MARK[check.status]} ${check.status}`)} ${check.name}: ${first}`];
  for (const line of more) lines.push(s.dim(`    ${line}`));
  if (check.fix && check.status !== 'pass') lines.push(`    ${s.bold('fix:')} ${check.fix}`);
  return lines;
}

/**
 * The end-of-run table of checks, per site: how many passed, warned and
 * failed, and the names of those that did not pass. Empty when no task
 * reported a check (a plain `deploy run`).
 *
 * @example
 * Checks: 2 sites, 1 with failures
 *   site    pass  warn  fail  not passed
 *   shop    14    1     0     warn: disk space
 *   blog    11    1     3     fail: vassal ini owner, socket dir, nginx; warn: git work tree
 */
export function renderChecks(checks: readonly CheckEvent[], s: Style): string {
  if (checks.length === 0) return '';
  const bySite = new Map<string, CheckEvent[]>();
  for (const check of checks) {
    const key = check.site ?? '(local)';
    bySite.set(key, [...(bySite.get(key) ?? []), check]);
  }
  const siteWidth = Math.max(4, ...[...bySite.keys()].map((site) => site.length));
  let failing = 0;
  const rows = [...bySite].map(([site, list]) => {
    const count = (status: CheckEvent['status']) => list.filter((check) => check.status === status).length;
    const names = (status: CheckEvent['status']) => [...new Set(list.filter((check) => check.status === status).map((check) => check.name))].join(', ');
    const fails = count('fail');
    if (fails > 0) failing++;
    const notPassed = [fails > 0 ? `fail: ${names('fail')}` : '', count('warn') > 0 ? `warn: ${names('warn')}` : ''].filter(Boolean).join('; ');
    const counts = `${String(count('pass')).padEnd(4)}  ${String(count('warn')).padEnd(4)}  ${String(fails).padEnd(4)}`;
    const text = `  ${site.padEnd(siteWidth)}  ${counts}  ${notPassed}`;
    return fails > 0 ? s.red(text) : count('warn') > 0 ? s.yellow(text) : s.green(text);
  });
  return [
    s.bold(`Checks: ${bySite.size} site${bySite.size === 1 ? '' : 's'}, ${failing} with failures`),
    s.dim(`  ${'site'.padEnd(siteWidth)}  pass  warn  fail  not passed`),
    ...rows,
  ].join('\n');
}
