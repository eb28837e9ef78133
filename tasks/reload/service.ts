import { raw, sh, type ShellCommand } from '../../src/index.ts';

/**
 * Reloads of an app server run by a supervisor or a web server rather than
 * a uWSGI emperor: the command each one composes, so a site in the
 * deployfile names its service and the tool knows how to restart it.
 * `sudo: true` runs it as `sudo -n <command>` (a narrow NOPASSWD rule in
 * sudoers, for supervisors whose control socket only root may use). The
 * system-wide systemd unit and Apache need root, so for them sudo is on
 * unless `sudo: false` says the site user may already.
 *
 * @example
 * vars: { reload: { supervisor: 'shop' } }               // supervisorctl restart shop
 * vars: { reload: { daemontools: '/etc/service/shop', sudo: true } } // sudo -n svc -t /etc/service/shop
 */
export type ServiceReload =
  /**
   * supervisor: `supervisorctl [-c config] restart <program>` (stop, then
   * start: a gap of 502s), or with `signal: 'HUP'` `supervisorctl signal HUP
   * <program>`: gunicorn then starts new workers with the new code and
   * stops the old ones gracefully, the master and its socket staying up.
   */
  | { supervisor: string; config?: string; signal?: string; sudo?: boolean }
  /** daemontools: `svc -t <service dir>` (TERM; supervise starts the run script again). */
  | { daemontools: string; sudo?: boolean }
  /** runit: `sv restart <service dir or name>` (waits up to 7s for it to be up). */
  | { runit: string; sudo?: boolean }
  /** systemd: `sudo -n systemctl restart <unit>`, or `systemctl --user restart <unit>` for a site user with lingering. */
  | { systemd: string; user?: boolean; sudo?: boolean }
  /** Apache (mod_fcgid, mod_wsgi): `sudo -n apachectl graceful` (or `restart`). */
  | { apache: 'graceful' | 'restart'; sudo?: boolean }
  /**
   * mod_fcgid: touch the FastCGI entry script. mod_fcgid itself ignores a
   * touch (it keys its processes by inode, not mtime): this works when the
   * program the script starts watches it, e.g. uWSGI's `--touch-reload
   * <script>`. Otherwise reload with `{ apache: 'graceful' }`.
   */
  | { fcgid: string; sudo?: boolean };

/** The names a service reload is recognised by, in the order they are checked. */
export const SERVICE_KINDS = ['supervisor', 'daemontools', 'runit', 'systemd', 'apache', 'fcgid'] as const;
export type ServiceKind = (typeof SERVICE_KINDS)[number];

/** The kind of a service reload. */
export function serviceKind(strategy: ServiceReload): ServiceKind {
  return SERVICE_KINDS.find((kind) => kind in strategy) as ServiceKind;
}

/** What a service reload runs and how output and errors call it. */
export interface ServiceCommand {
  command: ShellCommand;
  label: string;
  hint: string;
  /** A file whose mtime the reload sets: the clock of the verdict starts there. */
  marker?: string;
}

/**
 * A service reload from the deployfile, checked, or undefined when the
 * value is not one (a string strategy, a `{ command }`).
 *
 * @example serviceReloadOf({ runit: 'shop' }, 'shop') // { runit: 'shop' }
 */
export function serviceReloadOf(value: unknown, site: string): ServiceReload | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const object = value as Record<string, unknown>;
  const kinds = SERVICE_KINDS.filter((kind) => kind in object);
  if (kinds.length === 0) return undefined;
  const fail = (why: string): never => {
    throw new TypeError(`site "${site}": reload ${JSON.stringify(value)}: ${why}`);
  };
  if (kinds.length > 1) fail(`names ${kinds.join(' and ')}: choose one`);
  const kind = kinds[0] as ServiceKind;
  const allowed = new Set<string>([kind, 'sudo', ...(kind === 'supervisor' ? ['config', 'signal'] : kind === 'systemd' ? ['user'] : [])]);
  const extra = Object.keys(object).find((key) => !allowed.has(key));
  if (extra) fail(`unknown key "${extra}" for a ${kind} reload (it takes ${[...allowed].join(', ')})`);
  const target = object[kind];
  if (typeof target !== 'string' || target.trim() === '') fail(`${kind} must name ${DESCRIBE[kind]}`);
  if (kind === 'apache' && target !== 'graceful' && target !== 'restart') fail("apache must be 'graceful' or 'restart'");
  for (const flag of ['sudo', 'user']) if (object[flag] !== undefined && typeof object[flag] !== 'boolean') fail(`${flag} must be true or false`);
  if (object.config !== undefined && (typeof object.config !== 'string' || object.config === '')) fail('config must be the path of supervisord.conf');
  if (object.signal !== undefined && (typeof object.signal !== 'string' || !/^(SIG)?[A-Z0-9]+$/.test(object.signal))) fail("signal must be a signal's name, e.g. 'HUP'");
  if (kind === 'systemd' && object.user === true && object.sudo === true) fail('a --user unit is the site user\'s own: it needs no sudo');
  return object as unknown as ServiceReload;
}

const DESCRIBE: Record<ServiceKind, string> = {
  supervisor: 'the [program:...] name',
  daemontools: 'the service directory (/etc/service/<site>)',
  runit: 'the service directory or name',
  systemd: 'the unit (shop.service)',
  apache: "'graceful' or 'restart'",
  fcgid: 'the FastCGI entry script (the .fcgi file Apache runs)',
};

/**
 * The command a service reload runs.
 *
 * @example planServiceReload({ systemd: 'shop.service' }).command.text // 'sudo -n systemctl restart shop.service'
 */
export function planServiceReload(strategy: ServiceReload): ServiceCommand {
  const kind = serviceKind(strategy);
  const useSudo = strategy.sudo ?? ((kind === 'systemd' && !(strategy as { user?: boolean }).user) || kind === 'apache');
  const sudo = useSudo ? raw('sudo -n ') : raw('');
  // What the output shows: the command as it runs, sudo included.
  const shown = (text: string) => (useSudo ? `sudo -n ${text}` : text);
  const sudoHint = useSudo
    ? ` sudo must let the site user run exactly this without a password (/etc/sudoers.d/<site>: <site> ALL=(root) NOPASSWD: <the command above>).`
    : '';
  switch (kind) {
    case 'supervisor': {
      const s = strategy as { supervisor: string; config?: string; signal?: string };
      const config = s.config ? sh`-c ${s.config} ` : raw('');
      const action = s.signal ? sh`signal ${s.signal}` : raw('restart');
      return {
        command: sh`${sudo}supervisorctl ${config}${action} ${s.supervisor}`,
        label: shown(`supervisorctl ${s.signal ? `signal ${s.signal}` : 'restart'} ${s.supervisor}`),
        hint: `supervisorctl must reach supervisord's socket as the site user (chown= / chmod= in [unix_http_server]), or use sudo: true.${sudoHint}`,
      };
    }
    case 'daemontools': {
      const dir = (strategy as { daemontools: string }).daemontools;
      return {
        command: sh`${sudo}svc -t ${dir}`,
        label: shown(`svc -t ${dir}`),
        hint: `svc writes ${dir}/supervise/control, root's by default: give it to the site user or use sudo: true.${sudoHint}`,
      };
    }
    case 'runit': {
      const dir = (strategy as { runit: string }).runit;
      return {
        command: sh`${sudo}sv restart ${dir}`,
        label: shown(`sv restart ${dir}`),
        hint: `sv writes the service's supervise/control, root's by default: give it to the site user or use sudo: true.${sudoHint}`,
      };
    }
    case 'systemd': {
      const s = strategy as { systemd: string; user?: boolean };
      if (s.user) {
        // Over SSH there may be no session bus variable: the user manager's socket is under /run/user/<uid>.
        return {
          command: sh`XDG_RUNTIME_DIR=\${XDG_RUNTIME_DIR:-/run/user/$(id -u)} systemctl --user restart ${s.systemd}`,
          label: `systemctl --user restart ${s.systemd}`,
          hint: 'A --user unit runs only while the user manager does: as root, loginctl enable-linger <site>.',
        };
      }
      return {
        command: sh`${sudo}systemctl restart ${s.systemd}`,
        label: shown(`systemctl restart ${s.systemd}`),
        hint: `systemctl restart of a system unit needs root.${sudoHint}`,
      };
    }
    case 'apache': {
      const how = (strategy as { apache: string }).apache;
      return {
        command: sh`${sudo}apachectl ${how}`,
        label: shown(`apachectl ${how}`),
        hint: `apachectl needs root.${sudoHint}`,
      };
    }
    case 'fcgid': {
      const script = (strategy as { fcgid: string }).fcgid;
      return {
        command: sh`${sudo}touch ${script}`,
        label: shown(`touch ${script} (the FastCGI entry script)`),
        hint: `The site user must own ${script}. mod_fcgid ignores a touch by itself: the program the script starts must watch it (uWSGI: --touch-reload ${script}), else use reload: { apache: 'graceful' }.${sudoHint}`,
        marker: script,
      };
    }
  }
}
