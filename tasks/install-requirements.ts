import { sh, task, type TaskDefinition } from '../src/index.ts';
import { expandSite, resolveSite, shellPath, type PerSite, type SiteOptions } from './options.ts';

/** Options of {@link installRequirements}. */
export interface InstallRequirementsOptions extends SiteOptions {
  /**
   * Where the copy of the last installed requirements file is kept on the
   * server. Default `{virtualenv}/.deployfile/requirements.installed`: inside
   * the virtualenv, so a rebuilt virtualenv installs everything again.
   */
  installedCopy?: PerSite<string>;
}

/**
 * `pip install -r REQUIREMENTS` in the site's virtualenv, skipped (and said
 * so) when the file is byte-identical to the one the last successful install
 * used. The comparison runs on the server; nothing is downloaded.
 *
 * @example
 * tasks: { installRequirements: installRequirements({ requirements: 'requirements/production.txt' }) }
 */
export function installRequirements(options: InstallRequirementsOptions = {}): TaskDefinition {
  return task({
    description: 'pip install the requirements in the virtualenv, unless unchanged since the last deploy',
    run: async (c) => {
      const site = resolveSite(c.site, options);
      const given = typeof options.installedCopy === 'function' ? options.installedCopy(c.site) : options.installedCopy;
      const copy = given ? expandSite(given, site.site) : `${site.virtualenv}/.deployfile/requirements.installed`;
      const code = c.cd(site.codeDir);

      // The answer comes on stdout, with exit 0 either way: a first deploy (no copy
      // yet) is not a failure, and views would show a failed cmp as one.
      const same = await code.run(sh`if cmp -s ${site.requirements} ${shellPath(copy)}; then echo unchanged; fi`, { quiet: true });
      // A dry run prints nothing; claiming "unchanged" then would be a guess anyway.
      if (same.stdout.trim() === 'unchanged' && !c.dryRun) {
        c.skip('requirements unchanged since last deploy');
        return;
      }
      const pip = await code.prefix(sh`. ${shellPath(site.virtualenv)}/bin/activate`).run(sh`pip install -r ${site.requirements}`);
      // Saved only after pip succeeded (a user may answer "skip" to its failure):
      // a failed install must be retried by the next deploy, not skipped.
      if (pip.failed) {
        c.warn('pip install failed; the next deploy will install the requirements again');
        return;
      }
      await code.run(sh`mkdir -p ${shellPath(dirname(copy))} && cp ${site.requirements} ${shellPath(copy)}`, { quiet: true });
    },
  });
}

function dirname(path: string): string {
  const at = path.lastIndexOf('/');
  if (at < 0) return '.';
  return at === 0 ? '/' : path.slice(0, at);
}
