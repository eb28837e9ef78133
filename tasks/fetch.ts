import { quote, task, type Context, type TaskDefinition } from '../src/index.ts';
import { displayDir, resolveSite, type SiteOptions } from './options.ts';
import { pushedFor } from './push.ts';
import { readFacts } from './read-facts.ts';

/** What `fetch` found on a site: where its checkout is, and what a deploy switches it to. */
export interface Fetched {
  /** The commit the site's checkout is at now (what it serves after its last reload). */
  readonly head: string;
  /** The commit a deploy switches it to: its upstream after `git fetch`. */
  readonly revision: string;
  /** The upstream, e.g. `origin/main`. */
  readonly upstream: string;
}

const FETCHED_PREFIX = 'deployfile.tasks.fetched:';

/**
 * What `fetch` found for this site in this run, or undefined when it has not
 * run here. `installRequirements` reads the new requirements from
 * `fetched.revision` before the code changes; `pull` switches to it.
 */
export function fetchedFor(c: Context): Fetched | undefined {
  return c.shared.get(FETCHED_PREFIX + c.site.name) as Fetched | undefined;
}

/**
 * `git fetch` on the server, then every check that could stop a deploy half
 * way, made before anything a reload would load has changed: the fetched
 * upstream is exactly what `push` pushed from this site's working copy; the
 * checkout has no local edits (besides the generated `settings.py`) that
 * would block or be lost by the switch; the server's history has not
 * diverged; the new revision has `<settings>/settings_production.py`. A
 * failure here leaves the site exactly as it was, and says so.
 *
 * @example
 * tasks: { fetch: fetch({ codeDir: (site) => `/srv/${site.name}/code` }) }
 */
export function fetch(options: SiteOptions = {}): TaskDefinition {
  return task({
    description: 'Fetch the pushed revision on the server and check it can be switched to',
    run: async (c) => {
      await fetchAndCheck(c, options);
    },
  });
}

/** The body of {@link fetch}, also run by `pull` when `fetch` did not run first. */
export async function fetchAndCheck(c: Context, options: SiteOptions): Promise<Fetched> {
  const site = resolveSite(c.site, options);
  const code = c.cd(site.codeDir);
  const pushed = pushedFor(c, options);
  await code.run`git fetch --quiet`;
  if (c.dryRun) {
    if (pushed) c.log(`would check that the upstream is ${pushed.revision}, pushed from ${displayDir(pushed.localDir)}`);
    // Stands in for what a real run would find, so a dry run's pull does not fetch again.
    const placeholder: Fetched = { head: 'HEAD', revision: pushed?.revision ?? '@{upstream}', upstream: '@{upstream}' };
    c.shared.set(FETCHED_PREFIX + site.site, placeholder);
    return placeholder;
  }
  const untouched = 'Nothing was changed on the server: it still has the code it had before this deploy.';

  // Every fact the checks below need, read in one session: they are all
  // read-only, so reading one that an earlier check makes moot costs nothing.
  const generated = `${site.settings}/settings.py`;
  const production = `${site.settings}/settings_production.py`;
  const facts = await readFacts(
    code,
    'read the checkout: HEAD, upstream, local edits, history, production settings',
    {
      head: 'git rev-parse HEAD',
      upstreamName: 'git rev-parse --abbrev-ref --symbolic-full-name @{upstream}',
      // The setup line already asked; git runs again only to say why it could not answer.
      revision: 'if [ -n "$__df_rev" ]; then echo "$__df_rev"; else git rev-parse @{upstream}; fi',
      branch: 'git rev-parse --abbrev-ref HEAD',
      status: 'git status --porcelain --untracked-files=no',
      ancestor: 'git merge-base --is-ancestor HEAD "$__df_rev"',
      production: `git cat-file -e "$__df_rev":${quote(`./${production}`)}`,
    },
    ['__df_rev=$(git rev-parse @{upstream} 2>/dev/null)'],
  );
  /** A question git could not answer: nothing to decide on, so stop here, saying what git said. */
  const answer = (name: keyof typeof facts, command: string): string => {
    const fact = facts[name];
    if (fact.exitCode !== 0) c.abort(`fetch: ${command} failed in ${site.codeDir}: ${fact.stderr.trim() || `exit code ${fact.exitCode}`}. ${untouched}`);
    return fact.stdout;
  };

  const head = answer('head', 'git rev-parse HEAD').trim();
  if (facts.upstreamName.exitCode !== 0) {
    const branch = facts.branch.stdout.trim();
    c.abort(
      `fetch: ${site.codeDir} has ${branch === 'HEAD' || !branch ? 'a detached HEAD' : `branch ${branch} checked out, which tracks no upstream`}, ` +
        `so there is nothing to pull. Fix it on the server: git -C ${site.codeDir} switch <branch> && git -C ${site.codeDir} branch -u origin/<branch>. ${untouched}`,
    );
  }
  const upstream = facts.upstreamName.stdout.trim();
  const revision = answer('revision', 'git rev-parse @{upstream}').trim();

  if (pushed && revision !== pushed.revision) {
    const checkedOut = facts.branch.stdout.trim();
    const branchNote =
      checkedOut && checkedOut !== pushed.branch
        ? `the server has ${checkedOut === 'HEAD' ? 'a detached HEAD' : `branch ${checkedOut}`} checked out, but ${pushed.branch} was pushed`
        : `the server's checkout tracks ${upstream}`;
    c.abort(
      `fetch: after git fetch, ${upstream} in ${site.codeDir} is at ${revision}, but this run pushed ${pushed.revision} from ${displayDir(pushed.localDir)}.\n` +
        `Likely causes: ${branchNote}; or its remote is not the repository ${displayDir(pushed.localDir)} pushes to (a site deployed from another working copy: set its localDir). ` +
        `Inspect with: git -C ${site.codeDir} remote -v. ${untouched}`,
    );
  }

  // Local edits would make git refuse the switch, or be overwritten by it. The
  // generated settings.py is the one expected difference: pull rewrites it.
  // (Untrimmed: each line starts with its two status columns, often a space.)
  const edits = answer('status', 'git status --porcelain')
    .split('\n')
    .filter((line) => line.trim() !== '' && line.slice(3) !== generated);
  if (edits.length > 0) {
    const shown = edits.slice(0, 10).map((line) => `  ${line}`);
    if (edits.length > shown.length) shown.push(`  ... and ${edits.length - shown.length} more`);
    c.abort(
      `fetch: ${site.codeDir} has local edits on the server, which a pull would refuse or lose:\n${shown.join('\n')}\n` +
        `Commit them to the repository and deploy that, or discard them (git -C ${site.codeDir} checkout -- <file>). ${untouched}`,
    );
  }

  const ancestor = facts.ancestor;
  if (ancestor.exitCode === 1) {
    c.abort(
      `fetch: ${site.codeDir} has commits that ${upstream} does not (its history diverged), so it cannot be fast-forwarded to ${revision}. ` +
        `See them with: git -C ${site.codeDir} log --oneline ${upstream}..HEAD. ${untouched}`,
    );
  } else if (ancestor.exitCode !== 0) {
    c.abort(`fetch: git merge-base failed in ${site.codeDir}: ${ancestor.stderr.trim() || `exit code ${ancestor.exitCode}`}. ${untouched}`);
  }

  if (facts.production.exitCode !== 0) {
    c.abort(`fetch: ${revision} has no ${production}, so deploying it would serve the development settings. Add it (or set the settings var to the package holding it). ${untouched}`);
  }

  const fetched: Fetched = { head, revision, upstream };
  c.shared.set(FETCHED_PREFIX + site.site, fetched);
  c.log(head === revision ? `already at ${revision} (${upstream})` : `${upstream} is at ${revision}; the site is at ${head}`);
  return fetched;
}
