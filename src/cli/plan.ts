import { plan, PLAN_RESULTS } from '../../tasks/plan/index.ts';
import type { PlanDocument, SitePlan } from '../../tasks/plan/schema.ts';
import { EXIT } from '../core/errors.ts';
import type { DeployEvent } from '../core/events.ts';
import { style, useColor } from '../views/style.ts';
import { drawsLiveView } from './engine.ts';
import { deployRun, isInteractive } from './run.ts';

/** `deploy plan`'s exit code when at least one site would change: a pipeline deploys only then. */
export const EXIT_WOULD_CHANGE = 3;

/**
 * `deploy plan [-s SITES] [--json]`: the `plan` task (the deployfile's own
 * wins, e.g. djangoTasks' with its options) on each selected site, read-only
 * (no lock, no history, nothing written on a server or in git), then one
 * table of what a deploy would change. With --json, one document on stdout
 * (docs/plan.md, docs/plan.schema.json) and the progress on stderr.
 *
 * Exit codes: 0 no site would change, 3 at least one would, 1 a site could
 * not be planned (or the run failed), 2 usage error.
 *
 * @example process.exitCode = await planCommand({ site: 'shop', json: true });
 */
export async function planCommand(flags: Record<string, unknown>, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const results = new Map<string, SitePlan>();
  const failed: PlanDocument['failed'] = [];
  const observe = (event: DeployEvent): void => {
    if (event.type === 'site:end' && event.status !== 'ok') failed.push({ site: event.site, error: event.error ?? `${event.status}${event.failedTask ? ` in ${event.failedTask}` : ''}` });
  };
  const json = flags.json === true;
  const code = await deployRun(['plan'], flags, { [PLAN_RESULTS]: results }, { withTasks: () => ({ plan: plan() }), documentOnStdout: json, observe });
  const sites = [...results.values()];
  // A usage error, or a run that never reached a site: its own message was printed.
  if (code === EXIT.usage || (sites.length === 0 && failed.length === 0)) return code;
  const exitCode: PlanDocument['exitCode'] = code !== EXIT.ok || failed.length > 0 ? EXIT.failed : sites.some((s) => s.wouldChange) ? EXIT_WOULD_CHANGE : EXIT.ok;
  if (json) {
    const document: PlanDocument = { at: new Date().toISOString(), sites, failed, exitCode };
    out.write(`${JSON.stringify(document, null, 2)}\n`);
  } else {
    const color = useColor(out as NodeJS.WriteStream);
    // The progress view on a terminal shows a site's last lines only while it runs: the details are printed again here.
    if (drawsLiveView(isInteractive(), flags.verbose === true)) out.write(sites.map((p) => planDetails(p, color)).join(''));
    out.write(planTable(sites, failed, color));
  }
  // Interrupted runs keep their signal's exit code.
  return code !== EXIT.ok && code !== EXIT.failed ? code : exitCode;
}

/** The table that ends `deploy plan`: one row per site, then the verdict. */
export function planTable(sites: readonly SitePlan[], failed: PlanDocument['failed'], color = false): string {
  const s = style(color);
  const rows = sites.map((p) => [
    p.site,
    p.history === 'same' ? 'up to date' : p.history === 'behind' ? `${p.commitCount} new` : p.history === 'unknown' ? 'unknown (server has its own)' : p.history,
    p.requirements.status === 'unchanged' ? 'skipped' : p.requirements.status === 'first' ? 'runs (first)' : `runs (${p.requirements.added.length + p.requirements.removed.length + p.requirements.changed.length} changed)`,
    p.static.status === 'skipped' ? 'skipped' : 'runs',
    p.migrations.length === 0 ? 'none' : `${p.migrations.length}${p.migrations.some((m) => m.irreversible) ? ' (irreversible)' : ''}`,
    p.settings.changed ? 'changes' : 'same',
    p.warnings.length === 0 ? '' : `${p.warnings.length} warning${p.warnings.length === 1 ? '' : 's'}`,
  ]);
  for (const f of failed) rows.push([f.site, 'could not be planned', '', '', '', '', f.error.split('\n')[0]!]);
  const header = ['site', 'commits', 'pip', 'static', 'migrations', 'settings', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const changing = sites.filter((p) => p.wouldChange).map((p) => p.site);
  const verdict =
    failed.length > 0
      ? s.red(`${failed.length} site${failed.length === 1 ? '' : 's'} could not be planned: ${failed.map((f) => f.site).join(', ')}`)
      : changing.length > 0
        ? s.yellow(`a deploy would change ${changing.length} of ${sites.length} site${sites.length === 1 ? '' : 's'}: ${changing.join(', ')}`)
        : s.green(`nothing to deploy: ${sites.length === 1 ? 'the site is' : `all ${sites.length} sites are`} up to date`);
  return `\n${s.bold(line(header))}\n${rows.map(line).join('\n')}\n\n${verdict}\n`;
}

/** One site's plan as a block of lines: what the plain view printed as it went, for views that do not keep it. */
export function planDetails(p: SitePlan, color = false): string {
  const s = style(color);
  const lines = [s.bold(`${p.site}: `) + (p.upToDate ? `up to date at ${p.served.slice(0, 7)} (${p.branch})` : `at ${p.served.slice(0, 7)}, a deploy would ship ${p.ship.slice(0, 7)} (${p.branch}; ${p.history})`)];
  for (const c of p.commits) lines.push(`  ${c.sha} ${c.subject}`);
  if (p.commitCount > p.commits.length) lines.push(`  ... and ${p.commitCount - p.commits.length} more`);
  const r = p.requirements;
  const changes = [...r.added.map((a) => `+${a.to}`), ...r.removed.map((a) => `-${a.from}`), ...r.changed.map((a) => `${a.from} -> ${a.to}`)];
  lines.push(`  requirements: ${r.status === 'unchanged' ? 'unchanged, pip skipped' : r.status === 'first' ? 'no earlier install recorded, pip runs' : `${changes.join(', ') || 'reordered'}, pip runs`}`);
  if (r.pip && 'install' in r.pip) lines.push(`  pip --dry-run: ${r.pip.install.length === 0 ? 'nothing to install' : r.pip.install.map((i) => `${i.name}==${i.version}`).join(', ')}`);
  if (r.pip && 'error' in r.pip) lines.push(`  ${r.pip.error}`);
  lines.push(`  static files: ${p.static.status === 'skipped' ? 'unchanged, collectstatic skipped' : `collectstatic runs (${p.static.reason})`}`);
  for (const m of p.migrations) lines.push(`  migration: ${m.app}.${m.name}${m.irreversible ? s.yellow(` (cannot be reversed: ${m.irreversible})`) : ''}`);
  if (p.settings.changed && p.settings.diff) lines.push(`  settings: ${p.settings.file} would change:`, ...p.settings.diff.split('\n').map((l) => `    ${l}`));
  for (const w of p.warnings) lines.push(s.yellow(`  warning: ${w}`));
  return `\n${lines.join('\n')}\n`;
}
