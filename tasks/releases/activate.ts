import { AbortError, InterruptedError, quote, sh, task, type Context, type TaskDefinition } from '../../src/index.ts';
import { AppNotBackError } from '../touch-vassal-ini.ts';
import { builtFor } from './build.ts';
import { appendRecord, operator, readReleases, recordCommand, relinkLines, releasePaths, uninterruptible, type NewReleaseEvent, type ReleaseOptions, type ReleasePaths } from './layout.ts';
import { currentRelease, releasesToRemove, type ReleaseState } from './record.ts';

/** A release to make live: its directory and its virtualenv. */
export interface Target {
  id: string;
  dir: string;
  venv: string;
}

/**
 * Point `~/Sites/<site>` and `~/virtualenvs/<site>` at a release, each link
 * replaced by one rename, both in one script that Ctrl-C, a timeout or a lost
 * connection cannot stop half-way; `record`'s events are appended in that
 * same script, so the record says what the links say even when the deploy
 * process is killed the moment the switch is done.
 */
export async function switchTo(c: Context, paths: ReleasePaths, target: Target, ...record: NewReleaseEvent[]): Promise<void> {
  const links = relinkLines([
    [paths.virtualenv, target.venv],
    [paths.codeDir, target.dir],
  ]);
  const script = record.length > 0 ? `${links} && ${recordCommand(paths, ...record)}` : links;
  await c.run(sh`sh -c ${uninterruptible(script)}`, { label: `switch ${paths.codeDir} to release ${target.id} (code and virtualenv links, one rename each)` });
}

/**
 * Reload and verify through the deployfile's `touchVassalIni`: the verdict
 * and, when the app does not come back, its explanation.
 */
async function reload(c: Context): Promise<{ ok: true; seconds: number } | { ok: false; error: unknown; seconds: number }> {
  const started = Date.now();
  try {
    await c.invoke('touchVassalIni');
    return { ok: true, seconds: (Date.now() - started) / 1000 };
  } catch (error) {
    // Ctrl-C or SIGTERM while reloading is no verdict: the release was not tried, so it is neither
    // called bad nor switched back; the run stops with both links on it (a consistent release).
    if (error instanceof InterruptedError) throw error;
    return { ok: false, error, seconds: (Date.now() - started) / 1000 };
  }
}

/**
 * Make the release `buildRelease` built live: switch atomically, reload,
 * verify. The health gate: when the new release does not serve, switch back
 * to the previous release, reload, check that it serves again, mark the new
 * one bad in the record, and fail naming both releases, why the new one
 * failed and how long the site served errors. Afterwards, old releases past
 * `keepReleases` (and virtualenvs no kept release uses) are removed.
 *
 * @example
 * tasks: { activateRelease: activateRelease({ healthGate: true, keepReleases: 5 }) }
 */
export function activateRelease(options: ReleaseOptions = {}): TaskDefinition {
  return task({
    description: 'Switch to the new release, reload, and put the previous one back by itself if it does not serve',
    run: async (c) => {
      const paths = releasePaths(c, options);
      const built = builtFor(c);
      if (!built) return c.abort('activateRelease: no release was built for this site in this run; run buildRelease first (deploy does).');
      if (c.dryRun) {
        await switchTo(c, paths, built);
        await c.invoke('touchVassalIni');
        return;
      }
      const before = await readReleases(c, paths);
      const previous = currentRelease(before);
      await switchTo(c, paths, built, { event: 'activated', release: built.id, previous: previous?.id, operator: operator() });
      const verdict = await reload(c);
      if (verdict.ok) {
        await appendRecord(c, paths, { event: 'verified', release: built.id, seconds: verdict.seconds });
        c.report(`release ${built.id}${previous ? ` (was ${previous.id})` : ''}`);
        await removeOldReleases(c, paths);
        return;
      }
      const failure = verdict.error;
      const why = failure instanceof AppNotBackError ? failure.headline : failure instanceof Error ? failure.message.split('\n')[0] : String(failure);
      if (!paths.healthGate || !previous) {
        await appendRecord(c, paths, { event: 'bad', release: built.id, reason: why ?? 'did not serve' });
        if (!previous) c.warn('no previous release to put back: this is the first release of the site');
        throw failure;
      }
      // The health gate: the previous release back, as fast as the evidence allows.
      const erroringSince = Date.now() - verdict.seconds * 1000;
      c.warn(`release ${built.id} does not serve (${why}); putting ${previous.id} back`);
      await switchTo(
        c,
        paths,
        { id: previous.id, dir: `${paths.releasesDir}/${previous.id}`, venv: previous.venv },
        { event: 'bad', release: built.id, reason: why ?? 'did not serve' },
        { event: 'activated', release: previous.id, previous: built.id },
      );
      const back = await reload(c);
      const window = ((Date.now() - erroringSince) / 1000).toFixed(1);
      // touchVassalIni has already shown the whole explanation; the headline is enough here.
      const detail = `${why} (explained above, under touchVassalIni)`;
      if (!back.ok) {
        const backWhy = back.error instanceof AppNotBackError ? back.error.headline : back.error instanceof Error ? back.error.message.split('\n')[0] : String(back.error);
        throw new AbortError(
          `${c.site.name}: release ${built.id} does not serve, and the previous release ${previous.id}, put back, does not serve either: ${backWhy}\n` +
            `Why ${built.id} failed: ${detail}`,
        );
      }
      await appendRecord(c, paths, { event: 'verified', release: previous.id, seconds: back.seconds });
      c.report(`rolled back to ${previous.id}: ${built.id} did not serve`);
      throw new AbortError(
        `${c.site.name}: release ${built.id} does not serve, so ${previous.id} was put back and serves again; ` +
          `the site served errors for at most ${window}s (from the reload of ${built.id} until ${previous.id} answered).\n` +
          `Why ${built.id} failed: ${detail}`,
      );
    },
  });
}

/** Retention: remove what `keepReleases` does not keep, and virtualenvs no kept release uses. */
async function removeOldReleases(c: Context, paths: ReleasePaths): Promise<void> {
  const states = await readReleases(c, paths);
  const remove = releasesToRemove(states, paths.keep);
  if (remove.length === 0) return;
  const removed = new Set(remove.map((r) => r.id));
  const keptVenvs = new Set(states.filter((r: ReleaseState) => r.state !== 'removed' && !removed.has(r.id)).map((r) => r.venv));
  const venvs = [...new Set(remove.map((r) => r.venv))].filter((v) => !keptVenvs.has(v));
  const dirs = remove.map((r) => `${paths.releasesDir}/${r.id}`);
  // git forgets the worktrees whose directories are gone; the converted first release is a plain clone.
  const script = [`rm -rf ${[...dirs, ...venvs].map(quote).join(' ')}`, `git --git-dir=${quote(paths.repoCache)} worktree prune`].join(' && ');
  await c.run(sh`sh -c ${script}`, { label: `remove ${remove.length} old release${remove.length === 1 ? '' : 's'} (${remove.map((r) => r.id).join(', ')})` });
  await appendRecord(c, paths, ...remove.map((r) => ({ event: 'removed' as const, release: r.id })));
}
