import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { quotePath, raw, type Context, type SiteInfo } from '../src/index.ts';
import type { AppServer } from './reload/app.ts';
import type { ReloadStrategy } from './reload/strategy.ts';

/**
 * A value given once for every site, or computed from the site. Strings may
 * contain `{site}`, replaced by the site's name.
 *
 * @example
 * const codeDir: PerSite<string> = '/srv/{site}/code';
 * const logs: PerSite<string> = (site) => `/var/log/uwsgi/${site.name}.log`;
 */
export type PerSite<T> = T | ((site: SiteInfo) => T);

/**
 * Where a Django site lives on its server. Each field defaults from the
 * site's name and can be set here (for every site) or in a site's `vars`
 * (for that site), under the same name; `vars` win.
 *
 * @example
 * djangoTasks({ settings: 'example_site', healthUrl: (site) => `https://${site.name}.example.com/` })
 */
export interface SiteOptions {
  /** The git checkout on the server. Default `/home/{site}/Sites/{site}`. */
  codeDir?: PerSite<string>;
  /** The virtualenv the app runs in. Default `/home/{site}/virtualenvs/{site}`. */
  virtualenv?: PerSite<string>;
  /** The Python package holding `settings.py`, relative to the code dir. Default `{site}`. */
  settings?: PerSite<string>;
  /** The uWSGI emperor's vassal ini for the site. Default `/etc/uwsgi/emperor.d/{site}.ini`. */
  vassal?: PerSite<string>;
  /** The requirements file, relative to the code dir. Default `REQUIREMENTS`. */
  requirements?: PerSite<string>;
  /** An URL the server itself can fetch to see the app answer. Default: none (the vassal's socket is probed). */
  healthUrl?: PerSite<string | undefined>;
  /** The vassal's uWSGI log. Default: the ini's `logto`/`daemonize` line. */
  uwsgiLog?: PerSite<string | undefined>;
  /**
   * The local working copy (git checkout) this site is deployed from: `test`
   * runs there and `push` pushes it, once per distinct working copy however
   * many sites share it, and `fetch`/`pull` check that the site gets exactly
   * what was pushed from it. Default: the directory you run `deploy` in;
   * relative paths are relative to it.
   */
  localDir?: PerSite<string>;
  /**
   * How the code is laid out on the server: `in-place` (default; one
   * checkout updated by `fetch` and `pull`) or `releases` (each deploy builds
   * `~/releases/<id>` beside the live one, `~/Sites/<site>` links to the
   * current one, and a release that does not serve is rolled back by itself).
   */
  layout?: PerSite<Layout>;
}

/** See {@link SiteOptions.layout}. */
export type Layout = 'in-place' | 'releases';

/**
 * The `vars` a site may set to override the defaults of the task library,
 * one per field of {@link SiteOptions}. Type a deployfile with it to have
 * them checked.
 *
 * @example
 * defineDeployfile<DjangoVars>({
 *   sites: { alleged: { host: 'web1', vars: { settings: 'alleged_site', healthUrl: 'http://127.0.0.1:8081/' } } },
 *   tasks: djangoTasks(),
 * });
 */
export type DjangoVars = {
  codeDir?: string;
  virtualenv?: string;
  settings?: string;
  vassal?: string;
  requirements?: string;
  healthUrl?: string;
  uwsgiLog?: string;
  localDir?: string;
  layout?: Layout;
  /** How touchVassalIni reloads the app: see ReloadStrategy (default 'touch'). */
  reload?: ReloadStrategy;
  /** An app server that is not a uWSGI emperor's vassal (gunicorn, a supervised uWSGI, mod_fcgid): see AppServer. */
  app?: AppServer;
  /** Only for the releases layout: see ReleaseOptions. */
  releasesDir?: string;
  repoCache?: string;
  repository?: string;
  /** Only for deploy provision: see ProvisionOptions. */
  origin?: string;
  branch?: string;
  authorizedKeys?: string[];
  cloneAs?: 'site' | 'admin';
  gitKnownHosts?: string[];
  shell?: string;
  python?: string;
  virtualenvArgs?: string[];
  vassalSkeleton?: string;
  uwsgiGroup?: string;
  socketDir?: string;
  nginxFile?: string;
  nginxEnabled?: string | false;
  nginxTest?: string;
  nginxReload?: string;
  serverName?: string;
  listen?: string;
  checkUrl?: string;
};

/** A site's settings with every default applied. */
export interface ResolvedSiteOptions {
  readonly site: string;
  readonly codeDir: string;
  readonly virtualenv: string;
  readonly settings: string;
  readonly vassal: string;
  readonly requirements: string;
  readonly healthUrl: string | undefined;
  readonly uwsgiLog: string | undefined;
  /** Absolute. */
  readonly localDir: string;
  readonly layout: Layout;
}

const DEFAULTS: Record<'codeDir' | 'virtualenv' | 'settings' | 'vassal' | 'requirements', string> = {
  codeDir: '/home/{site}/Sites/{site}',
  virtualenv: '/home/{site}/virtualenvs/{site}',
  settings: '{site}',
  vassal: '/etc/uwsgi/emperor.d/{site}.ini',
  requirements: 'REQUIREMENTS',
};

const KEYS = ['codeDir', 'virtualenv', 'settings', 'vassal', 'requirements', 'healthUrl', 'uwsgiLog', 'localDir', 'layout'] as const;

/** Replace `{site}` by the site's name. */
export function expandSite(value: string, siteName: string): string {
  return value.replaceAll('{site}', siteName);
}

function fromOption<T>(value: PerSite<T> | undefined, site: SiteInfo): T | undefined {
  return typeof value === 'function' ? (value as (site: SiteInfo) => T)(site) : value;
}

/**
 * A site's settings: its `vars`, then the options given to the task
 * factory, then the defaults derived from its name. The one place the task
 * library decides where things are.
 *
 * @example
 * resolveSite({ name: 'alleged', vars: { settings: 'alleged_site' }, ... }, {})
 * // => { codeDir: '/home/alleged/Sites/alleged', settings: 'alleged_site', ... }
 */
export function resolveSite(site: SiteInfo, options: SiteOptions = {}): ResolvedSiteOptions {
  const vars = (site.vars ?? {}) as Record<string, unknown>;
  const pick = (key: (typeof KEYS)[number]): string | undefined => {
    const fromVars = vars[key];
    // vars come from a deployfile that may be untyped: a number or a typo'd
    // object here would otherwise end up quoted into a command as "[object Object]".
    if (fromVars !== undefined && fromVars !== null) {
      if (typeof fromVars !== 'string' || fromVars === '') {
        throw new TypeError(`site "${site.name}": vars.${key} must be a non-empty string, got ${JSON.stringify(fromVars)}`);
      }
      return expandSite(fromVars, site.name);
    }
    const option = fromOption(options[key], site);
    if (option !== undefined) {
      if (typeof option !== 'string' || option === '') {
        throw new TypeError(`option ${key} must be a non-empty string for site "${site.name}", got ${JSON.stringify(option)}`);
      }
      return expandSite(option, site.name);
    }
    const fallback = (DEFAULTS as Record<string, string | undefined>)[key];
    return fallback === undefined ? undefined : expandSite(fallback, site.name);
  };
  return {
    site: site.name,
    codeDir: pick('codeDir') as string,
    virtualenv: pick('virtualenv') as string,
    settings: pick('settings') as string,
    vassal: pick('vassal') as string,
    requirements: pick('requirements') as string,
    healthUrl: pick('healthUrl'),
    uwsgiLog: pick('uwsgiLog'),
    localDir: resolve(pick('localDir') ?? '.'),
    layout: layoutOf(pick('layout'), site.name),
  };
}

function layoutOf(value: string | undefined, site: string): Layout {
  if (value === undefined || value === 'in-place' || value === 'releases') return value ?? 'in-place';
  throw new TypeError(`site "${site}": layout must be 'in-place' or 'releases', got ${JSON.stringify(value)}`);
}

/**
 * The working copy a task's local work uses: the site's (see
 * {@link SiteOptions.localDir}), or in the run-once lane, where there is no
 * site, the option when it is a plain string, else the current directory.
 */
export function localDirOf(c: Context, options: Pick<SiteOptions, 'localDir'>): string {
  if (!c.once) return resolveSite(c.site, options).localDir;
  return resolve(typeof options.localDir === 'string' ? options.localDir : '.');
}

/**
 * A local directory as people read it: relative to where deploy runs when
 * inside it, else with `~` for the home directory.
 *
 * @example
 * displayDir('/home/op/src/shop') // '~/src/shop'; displayDir(process.cwd()) // '.'
 */
export function displayDir(dir: string): string {
  const cwd = process.cwd();
  if (dir === cwd) return '.';
  if (dir.startsWith(`${cwd}/`)) return dir.slice(cwd.length + 1);
  const home = homedir();
  return home && home !== '/' && dir.startsWith(`${home}/`) ? `~/${dir.slice(home.length + 1)}` : dir;
}

/**
 * A path for a `sh` template, quoted but with a leading `~/` left live so the
 * server's shell expands it to the site user's home (plain `${path}` would
 * quote the `~` too).
 *
 * @example
 * c.run`touch ${shellPath('~/my file')}` // touch ~/'my file'
 */
export function shellPath(path: string) {
  return raw(quotePath(path));
}
