import { quotePath, raw, sh, task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, shellPath, type PerSite, type SiteOptions } from './options.ts';

/** Options of {@link collectstatic}. */
export interface CollectstaticOptions extends SiteOptions {
  /**
   * Directories made (`mkdir -p`) before collecting, relative to the site
   * user's home unless absolute: where the production settings point
   * `STATIC_ROOT` and the file cache. Default `['static', 'caches/django']`,
   * as the seed recipe makes them.
   */
  dirs?: PerSite<string[]>;
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
    description: 'Collect static files (making ~/static and ~/caches/django first)',
    run: async (c) => {
      const site = resolveSite(c.site, options);
      const dirs = (typeof options.dirs === 'function' ? options.dirs(c.site) : options.dirs) ?? DEFAULT_SITE_DIRS;
      // Relative to the home directory: commands start there, before any cd.
      if (dirs.length > 0) await c.run(sh`mkdir -p ${raw(dirs.map((dir) => quotePath(dir)).join(' '))}`);
      await c.cd(site.codeDir).prefix(sh`. ${shellPath(site.virtualenv)}/bin/activate`).run`./manage.py collectstatic --noinput`;
    },
  });
}
