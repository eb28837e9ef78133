import { existsSync } from 'node:fs';
import type { SimpleGit } from 'simple-git';
import { task, type Context, type TaskDefinition } from '../src/index.ts';
import { displayDir, localDirOf, resolveSite, type SiteOptions } from './options.ts';

/** What `push` pushed from one working copy. */
export interface Pushed {
  /** The full SHA. */
  readonly revision: string;
  /** The local branch. */
  readonly branch: string;
  /** The working copy it was pushed from (absolute). */
  readonly localDir: string;
}

/** Prefix of the `c.shared` keys under which `push` leaves a {@link Pushed}, one per working copy. */
export const PUSHED_PREFIX = 'deployfile.tasks.pushed:';

/**
 * What `push` pushed in this run from the working copy this site is
 * deployed from, or undefined when nothing was pushed from it.
 *
 * @example
 * const pushed = pushedFor(c, options); // { revision: 'bf23819…', branch: 'main', localDir: '/home/op/src/shop' }
 */
export function pushedFor(c: Context, options: Pick<SiteOptions, 'localDir'> = {}): Pushed | undefined {
  const dir = c.once ? localDirOf(c, options) : resolveSite(c.site, options).localDir;
  return c.shared.get(PUSHED_PREFIX + dir) as Pushed | undefined;
}

/** Options of {@link push}. */
export interface PushOptions extends Pick<SiteOptions, 'localDir'> {}

/**
 * Push the local branch to its upstream, once per local working copy (see
 * `localDir`) however many sites deploy it, after checking that what is
 * deployed is what is committed: refuses on uncommitted changes and on a
 * branch without upstream. `pushedFor(c)` then tells each site's tasks what
 * was pushed from its working copy. Under --dry-run it only says what it
 * would push.
 *
 * @example
 * tasks: { push: push() } // then: deploy run push
 */
export function push(options: PushOptions = {}): TaskDefinition {
  return task({
    description: 'Push the committed local branch to its upstream, once per working copy',
    lock: false,
    run: async (c) => {
      const dir = localDirOf(c, options);
      const pushed = await c.runOnce(`deployfile.tasks.push:${dir}`, `push ${displayDir(dir)}`, (local) => pushBranch(local, dir));
      c.shared.set(PUSHED_PREFIX + dir, pushed);
    },
  });
}

async function pushBranch(c: Context, dir: string): Promise<Pushed> {
  if (!existsSync(dir)) c.abort(`push: ${dir} does not exist; set localDir to your project's checkout.`);
  // Loaded here, not at the top: every deployfile imports the tasks, and
  // simple-git's load would cost `deploy list` and `--help` about a fifth.
  const { simpleGit } = await import('simple-git');
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
    // Returned anyway, so a dry run's pull can say which revision it would check for.
    c.log(`would push ${branch} at ${revision} to ${target} (dry run: nothing pushed)`);
    return { revision, branch, localDir: dir };
  }
  try {
    // Pushing HEAD to the upstream ref by name works whatever push.default says.
    await git.push(remote, `HEAD:${merge}`);
  } catch (error) {
    c.abort(`push: git push ${remote} HEAD:${merge} failed:\n${indent(error instanceof Error ? error.message : String(error))}`);
  }
  c.log(`pushed ${branch} at ${revision} to ${target}${dir === process.cwd() ? '' : ` from ${displayDir(dir)}`}`);
  return { revision, branch, localDir: dir };
}

async function configValue(git: SimpleGit, key: string): Promise<string | undefined> {
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
