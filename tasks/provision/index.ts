/**
 * `deploy provision`'s tasks: `provision` sets a site up through its admin
 * account (inspect, show the plan and its diffs, ask, apply), and
 * `provisionCheck` asks the site through nginx after its first deploy.
 * The command (src/cli/provision.ts) runs them; see docs/provision.md.
 *
 * What they do is in ./run.ts, loaded the first time one runs: every
 * deployfile imports the task library, and a run that provisions nothing
 * should not pay for it at start-up (issue 17: start-up near Node's).
 */
import { task, type TaskDefinition } from '../../src/index.ts';
import type { SiteCheck } from './check.ts';
import type { ProvisionOptions } from './options.ts';

export { defaultNginxTemplate, type ProvisionOptions, type ProvisionSettings, type ProvisionVars } from './options.ts';

/** The `c.shared` key of the {@link ProvisionState} `deploy provision` hands its passes. */
export const PROVISION_STATE = 'deployfile.provision';

/** What one site's provision found and did, for the command's next pass. */
export interface SiteProvision {
  /** The site needs its first deploy: the code was just cloned, or it does not answer through nginx. */
  deploy: boolean;
  check: SiteCheck;
  /** How many changes were applied (0: nothing to change). */
  changes: number;
}

/** Shared by the command's passes (one object, filled by the provision task). */
export interface ProvisionState {
  /**
   * How the deployfile reaches each site: its identityFile (whose `.pub` is
   * the default key to authorize) and forwardAgent (the default for cloneAs).
   */
  reach: Map<string, { identityFile?: string; forwardAgent?: boolean }>;
  sites: Map<string, SiteProvision>;
}

/**
 * Set a site up on its server through its admin account, idempotently:
 * the Unix user (password `*`: key login only) with the operator's keys,
 * the clone of the origin (and git's safe.directory where ownership
 * differs), the virtualenv and the requirements, the vassal from the
 * emperor's skeleton (`site:uwsgi` 0644, written atomically), the socket
 * directory checked, the nginx server block (tested, rolled back on
 * failure, then reloaded). Prints the plan with the diffs first and asks
 * (`--yes` in CI). Takes no deploy lock and writes no history: it connects
 * as the admin, not as the site. Run by `deploy provision`, which then
 * deploys the sites that need it.
 *
 * @example
 * tasks: { ...djangoTasks(), provision: provision({ virtualenvArgs: ['--system-site-packages'] }) }
 */
export function provision(options: ProvisionOptions = {}): TaskDefinition {
  return task({
    description: 'Set the site up on its server (user, keys, code, virtualenv, vassal, nginx) through its admin account',
    lock: false,
    run: async (c) => (await import('./run.ts')).runProvision(c, options),
  });
}

/**
 * After the first deploy: the site answers through nginx, asked from its
 * server with the Host of its server block. Read-only.
 */
export function provisionCheck(): TaskDefinition {
  return task({
    description: 'Check that the site answers through nginx',
    lock: false,
    run: async (c) => (await import('./run.ts')).runProvisionCheck(c),
  });
}
