/**
 * `user@host:port`, the one way a site's SSH target is written (events,
 * summaries, errors, the dry run).
 *
 * @example sshTarget('alleged', 'web1', 22) // 'alleged@web1:22'
 */
export function sshTarget(user: string, host: string, port: number | undefined): string {
  return `${user}@${host}:${port ?? 22}`;
}

/** A site's target: `siteTarget({ user: 'alleged', host: 'web1' })` is `alleged@web1:22`. */
export function siteTarget(site: { user: string; host: string; port?: number }): string {
  return sshTarget(site.user, site.host, site.port);
}
