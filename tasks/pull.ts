import { sh, task, type TaskDefinition } from '../src/index.ts';
import { fetchAndCheck, fetchedFor } from './fetch.ts';
import { displayDir, resolveSite, type SiteOptions } from './options.ts';
import { pushedFor } from './push.ts';

/**
 * The switch, as one `sh -c` script so that it is never left half-way: it
 * ignores INT, TERM and HUP (Ctrl-C, a timeout, a lost connection: sshd does
 * not kill a command whose connection dies), writes the new production
 * settings beside the live ones first, and on a failed merge puts the live
 * settings back. Development settings exist only for the milliseconds
 * between `git checkout` and `mv`, inside this one process.
 * Arguments: $1 the settings package, $2 the revision.
 */
export const SWITCH_SCRIPT = [
  "trap '' INT TERM HUP",
  's="$1/settings.py"; p="$1/settings_production.py"; rev="$2"',
  'git show "$rev:./$p" > "$s.deployfile-new" || { rm -f "$s.deployfile-new"; exit 3; }',
  'live=; if [ -f "$s" ]; then cp -p "$s" "$s.deployfile-live" && live=1; fi',
  'if git ls-files --error-unmatch -- "$s" >/dev/null 2>&1; then git checkout -q -- "$s"; fi',
  'git merge -q --ff-only "$rev"; rc=$?',
  'if [ $rc -eq 0 ]; then mv -f "$s.deployfile-new" "$s"; rm -f "$s.deployfile-live"; exit 0; fi',
  'if [ -n "$live" ]; then mv -f "$s.deployfile-live" "$s"; fi; rm -f "$s.deployfile-new"; exit $rc',
].join('\n');

/**
 * Switch the site's checkout to the revision `fetch` checked (fetching and
 * checking first when `fetch` did not run), writing the production settings
 * in the same step: what a reload of the vassal would load is the complete
 * old code with its production settings, or the complete new code with its
 * production settings, never development settings and never new code with
 * old settings. Afterwards the checkout must be at the revision `push`
 * pushed from this site's working copy.
 *
 * @example
 * tasks: { pull: pull({ codeDir: (site) => `/srv/${site.name}/code` }) }
 */
export function pull(options: SiteOptions = {}): TaskDefinition {
  return task({
    description: 'Switch the code on the server to the pushed revision, with production settings, in one step',
    run: async (c) => {
      const site = resolveSite(c.site, options);
      const code = c.cd(site.codeDir);
      const fetched = fetchedFor(c) ?? (await fetchAndCheck(c, options));
      if (c.dryRun) {
        await code.run(sh`sh -c ${SWITCH_SCRIPT} switch ${site.settings} ${fetched.revision}`);
        return;
      }
      await code.run(sh`sh -c ${SWITCH_SCRIPT} switch ${site.settings} ${fetched.revision}`, {
        // The script is long; views and errors say what it does (--json and --dry-run show it whole).
        label: `git merge --ff-only ${fetched.revision} with ${site.settings}/settings_production.py as settings.py, in one step`,
      });
      const head = (await code.run('git rev-parse HEAD', { quiet: true })).stdout.trim();
      if (head !== fetched.revision) {
        c.abort(`pull: ${site.codeDir} is at ${head} after switching to ${fetched.revision}; inspect with: git -C ${site.codeDir} status`);
      }
      c.shared.set(`deployfile.revision:${site.site}`, head);
      const pushed = pushedFor(c, options);
      const from = pushed ? ` from ${displayDir(pushed.localDir)}` : '';
      c.report(`${head.slice(0, 12)}${from}`);
      c.log(
        fetched.head === head
          ? `already at ${head}${pushed ? ', the revision pushed' : ''}; production settings in place`
          : `switched ${fetched.head.slice(0, 12)} -> ${head}${pushed ? `, the revision pushed${from}` : ''}, with production settings`,
      );
    },
  });
}
