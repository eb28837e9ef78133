import type { VassalInfo, VassalSocket } from '../uwsgi.ts';

/**
 * An app server that is not a uWSGI emperor's vassal (gunicorn under
 * supervisor, uWSGI or a FastCGI server under daemontools, runit or
 * systemd, a mod_fcgid entry script), described in a site's `vars.app`.
 * Without a vassal ini to read, this is what the reload check needs to
 * tell the new instance from the old, to ask it, and to explain a failed
 * load by reproducing it as the site user.
 *
 * @example
 * vars: { reload: { supervisor: 'shop' }, app: { program: 'gunicorn', socket: '/run/shop/gunicorn.sock', module: 'shop.wsgi:application' } }
 */
export interface AppServer {
  /**
   * How its processes are recognised: a part of the program's name (the
   * basename of argv[0], of the script or `-m` module after it, or the
   * process name), e.g. `gunicorn`, `uwsgi`, `shop.fcgi`. The reload is
   * seen when every process of `user` matching it is new.
   */
  program: string;
  /** Whose processes those are. Default: the site's user. (mod_fcgid without suexec: `www-data`.) */
  user?: string;
  /** Where it listens, to be asked directly: a unix socket path or `host:port`. Without it (and without healthUrl) only the restart is checked. */
  socket?: string;
  /** The socket's protocol. Default `http` (gunicorn). */
  protocol?: VassalSocket['protocol'];
  /** The WSGI app, `package.module:callable` (callable default `application`): loaded again as the site user when the reload fails. */
  module?: string;
  /** The working directory the app starts in (first on sys.path). Default: the site's code dir. */
  chdir?: string;
  /** The virtualenv whose `bin/python` runs the app. Default: the site's virtualenv. */
  home?: string;
  /** Environment the app server sets for the app (DJANGO_SETTINGS_MODULE, ...). */
  env?: Record<string, string>;
  /** A log the site user can read where the app server writes its errors (gunicorn `--error-logfile`, supervisor's `stderr_logfile`): its lines since the reload explain a failure. */
  log?: string;
}

const PROTOCOLS = ['http', 'uwsgi', 'fastcgi'] as const;
const KEYS = new Set(['program', 'user', 'socket', 'protocol', 'module', 'chdir', 'home', 'env', 'log']);

/**
 * A site's `vars.app`, checked, or undefined when the site has none (a
 * uWSGI vassal, described by its ini).
 *
 * @example appServerOf({ program: 'gunicorn' }, 'shop') // { program: 'gunicorn' }
 */
export function appServerOf(value: unknown, site: string): AppServer | undefined {
  if (value === undefined || value === null) return undefined;
  const fail = (why: string): never => {
    throw new TypeError(`site "${site}": vars.app ${why}. Example: app: { program: 'gunicorn', socket: '/run/${site}/gunicorn.sock', module: '${site}.wsgi:application' }`);
  };
  if (typeof value !== 'object' || Array.isArray(value)) return fail(`must be an object, got ${JSON.stringify(value)}`);
  const app = value as Record<string, unknown>;
  const unknownKey = Object.keys(app).find((key) => !KEYS.has(key));
  if (unknownKey) fail(`has an unknown key "${unknownKey}" (known: ${[...KEYS].join(', ')})`);
  if (typeof app.program !== 'string' || app.program.trim() === '') fail('needs program: the name its processes run under (gunicorn, uwsgi, ...)');
  for (const key of ['user', 'socket', 'module', 'chdir', 'home', 'log']) {
    if (app[key] !== undefined && (typeof app[key] !== 'string' || (app[key] as string).trim() === '')) fail(`.${key} must be a non-empty string`);
  }
  if (app.protocol !== undefined && !(PROTOCOLS as readonly unknown[]).includes(app.protocol)) fail(`.protocol must be one of ${PROTOCOLS.join(', ')}`);
  if (app.env !== undefined && (typeof app.env !== 'object' || app.env === null || Object.values(app.env).some((v) => typeof v !== 'string'))) {
    fail('.env must map names to strings');
  }
  return app as unknown as AppServer;
}

/**
 * What the reload check knows of the app, in the shape a vassal ini gives
 * it: the socket, the log, and how to load the app again.
 *
 * @example appInfo({ program: 'gunicorn', socket: '127.0.0.1:8001', module: 'shop.wsgi' }, defaults).socket // { protocol: 'http', address: '127.0.0.1:8001' }
 */
export function appInfo(app: AppServer, defaults: { codeDir: string; virtualenv: string }): VassalInfo {
  const info: VassalInfo = {};
  if (app.socket) info.socket = { protocol: app.protocol ?? 'http', address: app.socket };
  if (app.log) info.log = app.log;
  if (app.module) {
    const [module, callable] = app.module.split(':');
    info.load = {
      chdir: app.chdir ?? defaults.codeDir,
      home: app.home ?? defaults.virtualenv,
      env: Object.entries(app.env ?? {}),
      pythonpath: [],
      module,
      ...(callable ? { callable } : {}),
    };
  }
  return info;
}
