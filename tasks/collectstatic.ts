import { quotePath, raw, sh, task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, shellPath, type PerSite, type SiteOptions } from './options.ts';
import { checkStaticInputs, recordStaticInputs, staticStateOf } from './static-inputs.ts';

/** Options of {@link collectstatic}. */
export interface CollectstaticOptions extends SiteOptions {
  /**
   * Directories made (`mkdir -p`) before collecting, relative to the site
   * user's home unless absolute: where the production settings point
   * `STATIC_ROOT` and the file cache. Default `['static', 'caches/django']`,
   * as the seed recipe makes them.
   */
  dirs?: PerSite<string[]>;
  /**
   * Skip the collect, and say so, when its inputs are as the last collect
   * left them (default true): the files in every STATICFILES_DIRS entry and
   * `<app>/static` of every installed app, by path, size and mtime, and the
   * settings package's source; and STATIC_ROOT still holds what was
   * collected. Django is asked for those places after each collect, so the
   * check itself needs only python3. Never skipped with other finders than
   * Django's two defaults (their inputs are theirs to know).
   */
  skipUnchanged?: boolean;
}

/** The directories {@link collectstatic} makes by default, in the site user's home. */
export const DEFAULT_SITE_DIRS = ['static', 'caches/django'] as const;

/**
 * `./manage.py collectstatic --noinput` in the site's virtualenv, after
 * making `~/static` and `~/caches/django` (see `dirs`), which the production
 * settings use for `STATIC_ROOT` and the file cache.
 *
 * @example
 * tasks: { collectstatic: collectstatic({ dirs: ['public/static', 'caches/django'] }) }
 */
export function collectstatic(options: CollectstaticOptions = {}): TaskDefinition {
  return task({
    description: 'Collect static files (making ~/static and ~/caches/django first), unless their inputs are unchanged since the last collect',
    run: async (c) => {
      const site = resolveSite(c.site, options);
      const dirs = (typeof options.dirs === 'function' ? options.dirs(c.site) : options.dirs) ?? DEFAULT_SITE_DIRS;
      const state = staticStateOf(site.virtualenv);
      const settingsDir = `${site.codeDir}/${site.settings}`;
      const skipping = options.skipUnchanged !== false && !c.dryRun;
      if (skipping) {
        const verdict = await checkStaticInputs(c, { state, settingsDir });
        if (verdict?.unchanged) {
          c.skip(`static files unchanged since the last collect (${verdict.files} files in ${verdict.staticRoot})`);
          return;
        }
      }
      // Relative to the home directory: commands start there, before any cd.
      if (dirs.length > 0) await c.run(sh`mkdir -p ${raw(dirs.map((dir) => quotePath(dir)).join(' '))}`);
      const inVenv = c.cd(site.codeDir).prefix(sh`. ${shellPath(site.virtualenv)}/bin/activate`);
      const collected = await inVenv.run`./manage.py collectstatic --noinput`;
      if (!skipping || collected.failed) return;
      // Where the finders read from, as Django says, for the next deploy's check.
      await recordStaticInputs(c, inVenv, { state, settingsDir });
    },
  });
}
