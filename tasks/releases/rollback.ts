import { InterruptedError, ROLLBACK_REQUEST, sh, task, type Context, type RollbackRequest, type TaskDefinition } from '../../src/index.ts';
import { AppNotBackError } from '../touch-vassal-ini.ts';
import { switchTo } from './activate.ts';
import { appendRecord, operator, readReleases, releasePaths, type ReleaseOptions, type ReleasePaths } from './layout.ts';
import { currentRelease, migrationsBack, rollbackTarget, type ReleaseState } from './record.ts';

/**
 * Put an earlier release back: code, production settings and virtualenv
 * together (each release has its own), by the same atomic switch a deploy
 * uses, then reload and verify. Asks first (on a TTY; `--yes` without one).
 * If the target does not serve, the release that was current is put back.
 *
 * @example
 * deploy rollback -s shop            # the newest healthy release before the current one
 * deploy rollback -s shop --to 20261201T101533Z-bf23819 -m "checkout broken"
 */
export function rollback(options: ReleaseOptions = {}): TaskDefinition {
  return task({
    description: 'Put the previous healthy release back (code, settings and virtualenv), reload and verify',
    run: async (c) => {
      const paths = releasePaths(c, options);
      const request = (c.shared.get(ROLLBACK_REQUEST) ?? {}) as RollbackRequest;
      const states = await readReleases(c, paths);
      const current = currentRelease(states);
      if (!current) {
        return c.abort(`rollback: ${c.site.name} has no current release in ${paths.record}: is it in the releases layout (layout: 'releases') and deployed once?`);
      }
      const candidates = states.filter((r) => r.state !== 'removed' && r.id !== current.id);
      let target = request.to ? candidates.filter((r) => r.id === request.to || r.id.startsWith(request.to as string) || r.revision.startsWith(request.to as string)) : [rollbackTarget(states)].filter((r) => r !== undefined);
      if (request.to && target.length > 1) {
        return c.abort(`rollback: --to ${request.to} matches ${target.length} releases (${target.map((r) => r.id).join(', ')}); give more of the id.`);
      }
      if (target.length === 0) {
        const listed = candidates.map((r) => `${r.id} (${r.state})`).join(', ') || 'none';
        return c.abort(
          request.to
            ? `rollback: no release of ${c.site.name} matches ${request.to}; releases besides the current ${current.id}: ${listed}`
            : `rollback: ${c.site.name} has no healthy release before the current ${current.id} to go back to; releases: ${listed}. Name one with --to.`,
        );
      }
      const to = target[0]!;
      if (to.state === 'bad') c.warn(`release ${to.id} is marked bad: ${to.reason ?? 'it did not serve'}`);
      c.log(`current: ${current.id} (${current.revision.slice(0, 12)}); rolling back to ${to.id} (${to.revision.slice(0, 12)}, ${to.state})`);
      if (!(await c.confirm(`Roll ${c.site.name} back from ${current.id} to ${to.id}?`, { default: false }))) {
        return c.abort(`rollback of ${c.site.name} not confirmed; nothing was changed (--yes answers yes without a TTY).`);
      }
      if (c.dryRun) {
        await switchTo(c, paths, { id: to.id, dir: `${paths.releasesDir}/${to.id}`, venv: to.venv });
        return;
      }
      await migrateBackIfNeeded(c, paths, current, to, request.migrateBack ?? false);
      await switchTo(
        c,
        paths,
        { id: to.id, dir: `${paths.releasesDir}/${to.id}`, venv: to.venv },
        { event: 'rolled-back', release: current.id, to: to.id, operator: operator(), message: request.message },
        { event: 'activated', release: to.id, previous: current.id, operator: operator() },
      );
      try {
        await c.invoke('touchVassalIni');
      } catch (error) {
        // Ctrl-C or SIGTERM while reloading is no verdict: the run stops with both links on the target (consistent).
        if (error instanceof InterruptedError) throw error;
        // The target does not serve: the release that was current goes back.
        await switchTo(
          c,
          paths,
          { id: current.id, dir: `${paths.releasesDir}/${current.id}`, venv: current.venv },
          { event: 'bad', release: to.id, reason: error instanceof AppNotBackError ? error.headline : String(error) },
          { event: 'activated', release: current.id, previous: to.id },
        );
        try {
          await c.invoke('touchVassalIni');
        } catch (again) {
          c.warn(`${current.id}, put back, does not serve either: ${again instanceof AppNotBackError ? again.headline : String(again)}`);
        }
        throw error;
      }
      await appendRecord(c, paths, { event: 'verified', release: to.id });
      c.report(`rolled back ${current.id} -> ${to.id}`);
    },
  });
}

/**
 * Before going back to a release with another migration state: stop and
 * print the `migrate` commands to run with the current release's code, or,
 * with `--migrate-back`, check none is irreversible (`migrate --plan` says
 * IRREVERSIBLE) and run them.
 */
async function migrateBackIfNeeded(c: Context, paths: ReleasePaths, current: ReleaseState, to: ReleaseState, migrateBack: boolean): Promise<void> {
  if (!current.migrations || !to.migrations) return;
  const { steps, unknown } = migrationsBack(current.migrations, to.migrations);
  if (steps.length === 0 && unknown.length === 0) return;
  if (unknown.length > 0) {
    c.abort(`rollback: ${to.id} has migrations of ${unknown.join(', ')}, which the current release ${current.id} does not know; migrate by hand. Nothing was changed.`);
  }
  const code = c.cd(paths.codeDir).prefix(sh`. ${paths.virtualenv}/bin/activate`);
  const commands = steps.map((s) => `./manage.py migrate ${s.app} ${s.to}`);
  if (!migrateBack) {
    c.abort(
      `rollback: ${to.id} has other migrations than the current ${current.id} (${steps.map((s) => `${s.app}: ${current.migrations?.[s.app]} -> ${s.to}`).join(', ')}). ` +
        `Nothing was changed. Migrate back first with the current release's code, then roll back:\n` +
        `  cd ${paths.codeDir} && . ${paths.virtualenv}/bin/activate\n${commands.map((line) => `  ${line}`).join('\n')}\n` +
        'or let deploy rollback run them: --migrate-back.',
    );
  }
  for (const step of steps) {
    const plan = await code.run(sh`./manage.py migrate ${step.app} ${step.to} --plan`, { quiet: true });
    const irreversible = plan.stdout.split('\n').filter((line) => /IRREVERSIBLE/.test(line));
    if (irreversible.length > 0) {
      c.abort(`rollback: migrating ${step.app} back to ${step.to} cannot be done: ${irreversible.map((l) => l.trim()).join('; ')}. Nothing was changed.`);
    }
  }
  for (const step of steps) await code.run(sh`./manage.py migrate --noinput ${step.app} ${step.to}`);
}
