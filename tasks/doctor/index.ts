/**
 * The doctor task as the task library hands it out. What it does is in
 * ./run.ts, loaded the first time it runs: every deployfile imports the task
 * library, and a run that never calls doctor should not pay for its checks
 * at start-up (issue 17: start-up near Node's).
 */
import { task, type CheckResult, type TaskDefinition } from '../../src/index.ts';
import type { SiteOptions } from '../options.ts';

/** Thrown when a check failed: the site fails, naming the failed checks (exit 1). */
export class DoctorFailedError extends Error {
  override readonly name = 'DoctorFailedError';
  constructor(
    readonly site: string,
    readonly failed: readonly CheckResult[],
  ) {
    super(`${site}: ${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${[...new Set(failed.map((check) => check.name))].join(', ')}`);
  }
}

/**
 * Check a site for the pitfalls of this stack, changing nothing: the vassal
 * ini (owner, group, mode, `uid=`, plugin), the app's load as the site user
 * with the ini's settings (traceback when it fails), `pip check` and the
 * packages the site user can see, the socket directory and socket, nginx's
 * `uwsgi_pass`, git (origin, clean tree, HEAD = last deployed revision),
 * free disk, and what is served since when. One `check` event per verdict;
 * the site fails when any check fails. Takes no lock and writes no history.
 *
 * Through the admin account (`deploy doctor` maps each site with one through
 * it) the site checks run as the site user with `sudo -u <site> -H`, and the
 * privileged ones (nginx -T, connecting as nginx's user) as root. Without
 * one it connects as the site user and reasons from permissions instead.
 * Needs python3 on the server. See docs/doctor.md.
 *
 * @example
 * deploy doctor -s shop
 */
export function doctor(options: SiteOptions = {}): TaskDefinition {
  return task({
    description: 'Check the site for the pitfalls of uWSGI, nginx and git (read-only)',
    lock: false,
    run: async (c) => (await import('./run.ts')).runDoctor(c, options),
  });
}
