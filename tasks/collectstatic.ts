import { sh, task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, shellPath, type SiteOptions } from './options.ts';

/**
 * `./manage.py collectstatic --noinput` in the site's virtualenv, after
 * making the `static/` and `caches/django` directories the settings expect.
 *
 * @example
 * tasks: { collectstatic: collectstatic() }
 */
export function collectstatic(options: SiteOptions = {}): TaskDefinition {
  return task({
    description: 'Collect static files (making static/ and caches/django first)',
    run: async (c) => {
      const site = resolveSite(c.site, options);
      const code = c.cd(site.codeDir);
      await code.run`mkdir -p static caches/django`;
      await code.prefix(sh`. ${shellPath(site.virtualenv)}/bin/activate`).run`./manage.py collectstatic --noinput`;
    },
  });
}
