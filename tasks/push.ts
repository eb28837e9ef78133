import { existsSync } from 'node:fs';
import { simpleGit } from 'simple-git';
import { task, type Context, type TaskDefinition } from '../src/index.ts';

/**
 * The `c.shared` key under which `push` leaves the full SHA it pushed, so
 * per-site tasks (like `pull`) can check that a site got exactly that.
 *
 * @example
 * const sha = c.shared.get(PUSHED_REVISION) as string | undefined;
 */
export const PUSHED_REVISION = 'deployfile.tasks.pushedRevision';

/** The `c.shared` key holding the local branch `push` pushed (a string). */
export const PUSHED_BRANCH = 'deployfile.tasks.pushedBranch';

/** Options of {@link push}. */
export interface PushOptions {
  /** The local checkout to push; default the current directory. */
  localDir?: string;
}

/**
 * Push the local branch to its upstream, once per run, after checking that
 * what is deployed is what is committed: refuses on uncommitted changes and
 * on a branch without upstream. Leaves the pushed SHA in
 * `c.shared.get(PUSHED_REVISION)`. Under --dry-run it only says what it
 * would push.
 *
 * @example
 * tasks: { push: push() } // then: deploy run push
 */
export function push(options: PushOptions = {}): TaskDefinition {
  return task({
    description: 'Push the committed local branch to its upstream',
    once: true,
    run: async (c) => {
      await pushBranch(c, options.localDir ?? process.cwd());
    },
  });
}

async function pushBranch(c: Context, dir: string): Promise<void> {
  if (!existsSync(dir)) c.abort(`push: ${dir} does not exist; set localDir to your project's checkout.`);
  const git = simpleGit({ baseDir: dir });
  if (!(await git.checkIsRepo())) c.abort(`push: ${dir} is not a git repository; run deploy from your project's checkout (or set localDir).`);

  const status = await git.status();
  const branch = status.current;
  if (status.detached || !branch) {
    c.abort('push: HEAD is detached, so there is no branch to push; check out the branch you deploy (git switch <branch>).');
  }

  // Untracked files are not part of what gets deployed, but tracked changes
  // would be: the server would get a commit that differs from what was tested.
  const changed = status.files.filter((file) => !(file.index === '?' && file.working_dir === '?'));
  if (changed.length > 0) {
    const shown = changed.slice(0, 10).map((file) => `  ${file.index}${file.working_dir} ${file.path}`);
    if (changed.length > shown.length) shown.push(`  ... and ${changed.length - shown.length} more`);
    c.abort(
      `push: the work tree has uncommitted changes, which would not be deployed:\n${shown.join('\n')}\n` +
        'Commit them (git commit -a) or set them aside (git stash), then deploy again.',
    );
  }
  if (status.not_added.length > 0) {
    c.warn(`push: untracked files are not deployed: ${status.not_added.slice(0, 5).join(', ')}${status.not_added.length > 5 ? ', ...' : ''}`);
  }

  const remote = (await configValue(git, `branch.${branch}.remote`)) ?? '';
  const merge = (await configValue(git, `branch.${branch}.merge`)) ?? '';
  if (!remote || !merge) {
    c.abort(`push: branch ${branch} has no upstream, so there is nowhere to push it. Set one with: git push -u origin ${branch}`);
  }
  // A local "upstream" (remote ".") would push nowhere the servers pull from.
  if (remote === '.') c.abort(`push: branch ${branch} tracks the local branch ${merge.replace(/^refs\/heads\//, '')}; set a remote upstream with: git push -u origin ${branch}`);

  const revision = (await git.revparse(['HEAD'])).trim();
  const target = `${remote}/${merge.replace(/^refs\/heads\//, '')}`;
  if (c.dryRun) {
    // Shared anyway, so a dry run's pull can say which revision it would check for.
    c.shared.set(PUSHED_REVISION, revision);
    c.shared.set(PUSHED_BRANCH, branch);
    c.log(`would push ${branch} at ${revision} to ${target} (dry run: nothing pushed)`);
    return;
  }
  try {
    // Pushing HEAD to the upstream ref by name works whatever push.default says.
    await git.push(remote, `HEAD:${merge}`);
  } catch (error) {
    c.abort(`push: git push ${remote} HEAD:${merge} failed:\n${indent(error instanceof Error ? error.message : String(error))}`);
  }
  c.shared.set(PUSHED_REVISION, revision);
  c.shared.set(PUSHED_BRANCH, branch);
  c.log(`pushed ${branch} at ${revision} to ${target}`);
}

async function configValue(git: ReturnType<typeof simpleGit>, key: string): Promise<string | undefined> {
  const value = (await git.getConfig(key)).value;
  return value === null ? undefined : value.trim();
}

function indent(text: string): string {
  return text
    .trim()
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
