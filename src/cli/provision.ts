/**
 * `deploy provision -s SITES`: sets sites up on their servers in two
 * `deploy run`-like passes, so both get the views, --json events, questions,
 * summary, retries, exit codes and Ctrl-C handling of every run:
 *
 *   1. through each site's admin account, the built-in `provision` task (the
 *      deployfile's own `provision` wins, e.g. `provision({ ... })` with its
 *      options): inspect, print the plan and diffs, ask (--yes), apply;
 *   2. as the site users, for the sites that need it (code just cloned, or
 *      not answering through nginx): the deployfile's `deploy`, then
 *      `provisionCheck`, the site asked through nginx.
 *
 * A site that failed pass 1 gets no pass 2; the others do.
 */
import { adminSite } from '../config/admin.ts';
import { UsageError } from '../core/errors.ts';
import { PROVISION_STATE, provision, provisionCheck, type ProvisionState } from '../../tasks/provision/index.ts';
import { deployRun } from './run.ts';

/**
 * Provision the selected sites; returns the exit code (0 when every site is
 * provisioned and answers, 1 when one failed or was not accepted, 2 usage).
 *
 * @example process.exitCode = await provisionCommand({ site: 'shop', yes: true });
 */
export async function provisionCommand(flags: Record<string, unknown>): Promise<number> {
  const state: ProvisionState = { reach: new Map(), sites: new Map() };
  const shared = { [PROVISION_STATE]: state };
  const withTasks = () => ({ provision: provision(), provisionCheck: provisionCheck() });
  // The plan and its diffs must be read whole before the question: plain lines, also on a terminal.
  const first = await deployRun(['provision'], { ...flags, verbose: true }, shared, {
    withTasks: (deployfile) => {
      if (!deployfile.tasks.deploy) throw new UsageError(`deploy provision ends with the site's first deploy, but ${deployfile.file} has no deploy task: add ...djangoTasks() (or a deploy task) to its tasks`);
      return withTasks();
    },
    sites: (sites) =>
      sites.map((site) => {
        state.reach.set(site.name, { identityFile: site.identityFile, forwardAgent: site.forwardAgent });
        return adminSite(site, 'provision');
      }),
  });
  // Usage errors, Ctrl-C and the like: no second pass.
  if (first !== 0 && first !== 1) return first;
  const next = [...state.sites].filter(([, site]) => site.deploy).map(([name]) => name);
  if (next.length === 0) {
    if (first === 0) process.stdout.write(state.sites.size > 0 && [...state.sites.values()].every((site) => site.changes === 0) ? 'deploy provision: nothing to change\n' : 'deploy provision: done\n');
    return first;
  }
  process.stdout.write(`\ndeploy provision: first deploy of ${next.join(', ')}, as the site user${next.length === 1 ? '' : 's'}, then a check through nginx\n`);
  const second = await deployRun(['deploy', 'provisionCheck'], flags, shared, {
    withTasks,
    sites: (sites) => sites.filter((site) => next.includes(site.name)),
  });
  return first === 0 ? second : first;
}
