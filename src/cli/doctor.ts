import { doctor } from '../../tasks/doctor/index.ts';
import { adminSite } from '../config/admin.ts';
import type { ResolvedSite } from '../config/load.ts';
import { deployRun } from './run.ts';

/**
 * `deploy doctor [-s SITES] [-x SITES] [--json]`: the built-in `doctor` task
 * (the deployfile's own `doctor`, e.g. djangoTasks' with its options, wins)
 * on each selected site, through the site's admin account where the
 * deployfile has one (site checks then run as the site user with sudo, the
 * privileged ones as root), else as the site user. A `deploy run` in every
 * other way: progress view, --json events, summary, exit codes. Read-only:
 * the task takes no lock, so nothing (history included) is written.
 *
 * @example process.exitCode = await doctorCommand({ site: 'shop' });
 */
export function doctorCommand(flags: Record<string, unknown>): Promise<number> {
  return deployRun(['doctor'], flags, undefined, {
    withTasks: () => ({ doctor: doctor() }),
    sites: (sites: ResolvedSite[]) => sites.map((site) => (site.admin ? adminSite(site, 'doctor') : site)),
  });
}
