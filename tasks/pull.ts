import { task, type TaskDefinition } from '../src/index.ts';
import { resolveSite, type SiteOptions } from './options.ts';
import { PUSHED_BRANCH, PUSHED_REVISION } from './push.ts';

/**
 * Fast-forward the site's checkout, then make sure it is at the revision
 * `push` pushed in this run (when it did): a site left on another commit is
 * an error naming both SHAs, not a silent stale deploy.
 *
 * @example
 * tasks: { pull: pull({ codeDir: (site) => `/srv/${site.name}/code` }) }
 */
export function pull(options: SiteOptions = {}): TaskDefinition {
  return task({
    description: 'Fast-forward the code on the server to the pushed revision',
    run: async (c) => {
      const { codeDir, settings } = resolveSite(c.site, options);
      const code = c.cd(codeDir);
      // copyProductionSettings overwrites the tracked settings.py on every deploy;
      // left modified, it makes the next pull refuse as soon as a commit touches it.
      const generated = `${settings}/settings.py`;
      await code.run`git diff --quiet -- ${generated} || git checkout -- ${generated}`;
      await code.run`git pull --ff-only`;
      const pushed = c.shared.get(PUSHED_REVISION) as string | undefined;
      if (c.dryRun) {
        if (pushed) c.log(`would check that HEAD is ${pushed}`);
        return;
      }
      const head = (await code.run(`git rev-parse HEAD`, { quiet: true })).stdout.trim();
      if (!pushed) {
        c.log(`HEAD is ${head}`);
        return;
      }
      if (head === pushed) {
        c.log(`HEAD is ${head}, the revision pushed`);
        return;
      }
      // Naming the branch checked out there turns "wrong branch" from a guess into a fact.
      const checkedOut = (await code.warnOnly().run(`git rev-parse --abbrev-ref HEAD`, { quiet: true })).stdout.trim();
      const pushedBranch = c.shared.get(PUSHED_BRANCH) as string | undefined;
      const branchNote =
        checkedOut && pushedBranch && checkedOut !== pushedBranch
          ? `the server has ${checkedOut === 'HEAD' ? 'a detached HEAD' : `branch ${checkedOut}`} checked out, but ${pushedBranch} was pushed`
          : `the server has ${checkedOut === 'HEAD' ? 'a detached HEAD' : `branch ${checkedOut || '(unknown)'}`} checked out`;
      c.abort(
        `pull: ${codeDir} is at ${head} after git pull, but this run pushed ${pushed}.\n` +
          `Likely causes: ${branchNote}; its history diverged from the remote's (local commits on the server); ` +
          `or nothing was pulled (its remote is not the one pushed to). Inspect with: git -C ${codeDir} status`,
      );
    },
  });
}
