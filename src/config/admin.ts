import { UsageError } from '../core/errors.ts';
import type { ResolvedSite } from './load.ts';

/**
 * The name under which a site reached through its admin account keeps its
 * own Unix user: `c.site.vars[SITE_USER_VAR]` (`c.site.user` is then the
 * admin).
 */
export const SITE_USER_VAR = 'siteUser';

/**
 * A site as reached through its admin account: same host, port, key and
 * jump hosts, the admin's user; the site's own user goes to
 * `vars.siteUser`. What `deploy provision` runs as, since the site user may
 * not exist yet. Throws a UsageError naming the setting when the site has
 * no admin account.
 *
 * @example
 * adminSite({ name: 'alleged', host: 'web1', user: 'alleged', admin: 'root', ... })
 * // => { name: 'alleged', host: 'web1', user: 'root', vars: { ..., siteUser: 'alleged' }, ... }
 */
export function adminSite(site: ResolvedSite, command: string): ResolvedSite {
  if (!site.admin) {
    throw new UsageError(
      `site ${site.name} has no admin account, which deploy ${command} needs: add admin: 'root' (or a user with sudo) to the site, or admins: { '${site.host}': 'root' } to the deployfile`,
    );
  }
  return { ...site, user: site.admin, userIsDefault: false, vars: { ...site.vars, [SITE_USER_VAR]: site.user } };
}
