import { sh, task, type SiteInfo, type TaskDefinition } from '../src/index.ts';
import { fetchedFor } from './fetch.ts';
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
 * After `fetch` (as in `deploy`), it installs the requirements of the
 * revision about to be deployed *before* the code changes, from a copy of
 * that revision's tree (`git archive`, so `-r other.txt` lines work): a pip
 * failure then stops the deploy with the old code still in place.
 *
 * @example
 * tasks: { installRequirements: installRequirements({ requirements: 'requirements/production.txt' }) }
 */
/**
 * Where the copy of the last installed requirements file is kept for a site:
 * the `installedCopy` option, else inside the virtualenv. Read by
 * installRequirements, provision and plan, so all three mean the same file.
 */
export function installedCopyOf(site: SiteInfo, virtualenv: string, options: Pick<InstallRequirementsOptions, 'installedCopy'>): string {
  const given = typeof options.installedCopy === 'function' ? options.installedCopy(site) : options.installedCopy;
  return expandSite(given ?? `${virtualenv}/.deployfile/requirements.installed`, site.name);
}

export function installRequirements(options: InstallRequirementsOptions = {}): TaskDefinition {
  return task({
    description: 'pip install the requirements in the virtualenv, unless unchanged since the last deploy',
    run: async (c) => {
      const site = resolveSite(c.site, options);
      const copy = installedCopyOf(c.site, site.virtualenv, options);
      const code = c.cd(site.codeDir);
      const fetched = c.dryRun ? undefined : fetchedFor(c);
      // The revision's own file when the code has not been switched to it yet.
      const ahead = fetched && fetched.revision !== fetched.head ? fetched.revision : undefined;
      const source = ahead ? sh`git show ${`${ahead}:./${site.requirements}`}` : sh`cat ${site.requirements}`;

      // The answer comes on stdout, with exit 0 either way: a first deploy (no copy
      // yet) is not a failure, and views would show a failed cmp as one.
      const same = await code.run(sh`if ${source} 2>/dev/null | cmp -s - ${shellPath(copy)}; then echo unchanged; fi`, { quiet: true });
      // A dry run prints nothing; claiming "unchanged" then would be a guess anyway.
      if (same.stdout.trim() === 'unchanged' && !c.dryRun) {
        c.skip('requirements unchanged since last deploy');
        return;
      }
      let where = code;
      const tree = `${site.virtualenv}/.deployfile/next`;
      if (ahead) {
        // The new revision's tree, outside the live checkout, only for pip to read.
        await code.run(sh`rm -rf ${shellPath(tree)} && mkdir -p ${shellPath(tree)} && git archive ${ahead} | tar -x -C ${shellPath(tree)}`, { quiet: true });
        where = c.cd(tree);
        c.log(`installing the requirements of ${ahead.slice(0, 12)} before switching the code to it`);
      }
      try {
        const pip = await where.prefix(sh`. ${shellPath(site.virtualenv)}/bin/activate`).run(sh`pip install -r ${site.requirements}`);
        // Saved only after pip succeeded (a user may answer "skip" to its failure):
        // a failed install must be retried by the next deploy, not skipped.
        if (pip.failed) {
          c.warn('pip install failed; the next deploy will install the requirements again');
          return;
        }
        await where.run(sh`mkdir -p ${shellPath(dirname(copy))} && cp ${site.requirements} ${shellPath(copy)}`, { quiet: true });
      } finally {
        if (ahead) await c.warnOnly().run(sh`rm -rf ${shellPath(tree)}`, { quiet: true });
      }
    },
  });
}

function dirname(path: string): string {
  const at = path.lastIndexOf('/');
  if (at < 0) return '.';
  return at === 0 ? '/' : path.slice(0, at);
}
