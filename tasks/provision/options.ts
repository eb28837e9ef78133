import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SITE_USER_VAR, type SiteInfo } from '../../src/index.ts';
import { installedCopyOf, type InstallRequirementsOptions } from '../install-requirements.ts';
import { expandSite, resolveSite, type PerSite, type ResolvedSiteOptions } from '../options.ts';

/** What a vassal or nginx template is given: where the site lives, with every default applied. */
export interface ProvisionVars {
  /** The site's name (the vassal is `<site>.ini`, uWSGI's `%n`). */
  site: string;
  /** The site's own Unix user (not the admin provision connects as). */
  user: string;
  codeDir: string;
  virtualenv: string;
  settings: string;
  /** The uWSGI socket the vassal listens on (from its `socket =` line); undefined for a TCP socket or none. */
  socket: string | undefined;
  serverName: string;
  listen: string;
  /** The site's `vars`, for templates that need more. */
  vars: Record<string, unknown>;
}

/**
 * How `deploy provision` sets a site up. Every plain field can also be set
 * per site in its `vars` under the same name (vars win); templates are
 * functions, so they are options only.
 *
 * @example
 * tasks: { ...djangoTasks(), provision: provision({ virtualenvArgs: ['--system-site-packages'], nginxFile: '/etc/nginx/conf.d/{site}.conf', nginxEnabled: false }) }
 */
export interface ProvisionOptions extends InstallRequirementsOptions {
  /** The repository the server clones. Default: `git remote get-url origin` in the site's local working copy (`localDir`). */
  origin?: PerSite<string>;
  /** The branch to clone. Default: the branch checked out in the local working copy. */
  branch?: PerSite<string>;
  /**
   * Public key lines for the site user's `~/.ssh/authorized_keys`. Default:
   * the `.pub` beside the site's `identityFile`, else `~/.ssh/id_*.pub`, else
   * the agent's keys (`ssh-add -L`).
   */
  authorizedKeys?: PerSite<string[]>;
  /**
   * Who clones the origin: `site` (the site user, with its own access: a path
   * on the server, https, or a deploy key in its `~/.ssh`), or `admin` (root,
   * through the admin's forwarded agent, then chowned to the site user).
   * Default `admin` for a site with `forwardAgent`, else `site`.
   */
  cloneAs?: PerSite<'site' | 'admin'>;
  /**
   * `known_hosts` lines for the git host, added to the site user's
   * `~/.ssh/known_hosts` (which the clone as `admin` checks the host with,
   * and the site's own fetches later). Default none.
   */
  gitKnownHosts?: PerSite<string[]>;
  /** The new user's login shell. Default `/bin/bash`. */
  shell?: PerSite<string>;
  /** The python that creates the virtualenv. Default `python3`. */
  python?: PerSite<string>;
  /** More arguments to `python -m venv`, e.g. `['--system-site-packages']`. Default none. */
  virtualenvArgs?: PerSite<string[]>;
  /** The emperor's vassal skeleton on the server, copied as the site's vassal. Default `app.skel` beside the vassal. */
  vassalSkeleton?: PerSite<string>;
  /** The vassal ini's text, instead of the skeleton's. */
  vassalTemplate?: (vars: ProvisionVars) => string;
  /** The group vassal inis and the socket directory belong to. Default `uwsgi`. */
  uwsgiGroup?: PerSite<string>;
  /** The socket directory to check. Default: the directory of the vassal's `socket =`. */
  socketDir?: PerSite<string>;
  /** The server block's file. Default `/etc/nginx/sites-available/{site}`. */
  nginxFile?: PerSite<string>;
  /** A link to nginxFile nginx includes (Debian's sites-enabled); `false` when nginxFile is included itself (conf.d). Default `/etc/nginx/sites-enabled/{site}`. */
  nginxEnabled?: PerSite<string | false>;
  /** Checks nginx's whole configuration. Default `nginx -t`. */
  nginxTest?: PerSite<string>;
  /** Reloads nginx. Default `nginx -s reload`. */
  nginxReload?: PerSite<string>;
  /** The server block's text. Default: {@link defaultNginxTemplate}. */
  nginxTemplate?: (vars: ProvisionVars) => string;
  /** The server block's `server_name`, sent as the Host header by the check. Default the site's name. */
  serverName?: PerSite<string>;
  /** The server block's `listen`. Default `80`. */
  listen?: PerSite<string>;
  /** What the server fetches to see the site answer through nginx. Default `http://127.0.0.1:<listen port>/`. */
  checkUrl?: PerSite<string>;
}

/** Every setting of one site's provisioning, resolved. */
export interface ProvisionSettings extends ResolvedSiteOptions {
  /** The site's own user, which may not exist yet. */
  user: string;
  origin: string | undefined;
  branch: string | undefined;
  authorizedKeys: string[];
  cloneAs: 'site' | 'admin';
  gitKnownHosts: string[];
  shell: string;
  python: string;
  virtualenvArgs: string[];
  vassalSkeleton: string;
  uwsgiGroup: string;
  socketDir: string | undefined;
  nginxFile: string;
  nginxEnabled: string | undefined;
  nginxTest: string;
  nginxReload: string;
  serverName: string;
  listen: string;
  checkUrl: string;
  /** Where installRequirements keeps the copy of the installed requirements (its `installedCopy`). */
  installedCopy: string;
}

/** Facts from the operator's machine that defaults are made of; read by {@link localFacts}. */
export interface LocalFacts {
  origin?: string;
  branch?: string;
  keys: string[];
  /** The deployfile forwards the agent to this site. */
  forwardAgent?: boolean;
}

function pick<T>(site: SiteInfo, key: string, option: PerSite<T> | undefined, check: (value: unknown) => value is T, what: string): T | undefined {
  const vars = (site.vars ?? {}) as Record<string, unknown>;
  const fromVars = vars[key];
  if (fromVars !== undefined && fromVars !== null) {
    if (!check(fromVars)) throw new TypeError(`site "${site.name}": vars.${key} must be ${what}, got ${JSON.stringify(fromVars)}`);
    return fromVars;
  }
  const value = typeof option === 'function' ? (option as (site: SiteInfo) => T)(site) : option;
  if (value === undefined) return undefined;
  if (!check(value)) throw new TypeError(`option ${key} must be ${what} for site "${site.name}", got ${JSON.stringify(value)}`);
  return value;
}

const isString = (value: unknown): value is string => typeof value === 'string' && value !== '';
const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');
const isCloneAs = (value: unknown): value is 'site' | 'admin' => value === 'site' || value === 'admin';
const isStringOrFalse = (value: unknown): value is string | false => value === false || isString(value);

/** The port of a `listen` value (`80`, `127.0.0.1:8080`, `[::1]:80 default_server`). */
export function listenPort(listen: string): string {
  const address = listen.trim().split(/\s+/)[0] ?? '';
  const port = /(?:^|:)(\d+)$/.exec(address)?.[1];
  return port ?? '80';
}

/**
 * One site's provisioning settings: its `vars`, then the options, then the
 * defaults (from its name, and from `local`: the working copy's origin and
 * branch, the operator's public keys).
 *
 * @example
 * provisionSettings({ name: 'alleged', user: 'root', vars: { siteUser: 'alleged' }, ... }, {}, { keys: ['ssh-ed25519 AAAA...'] })
 * // => { user: 'alleged', codeDir: '/home/alleged/Sites/alleged', nginxFile: '/etc/nginx/sites-available/alleged', ... }
 */
export function provisionSettings(site: SiteInfo, options: ProvisionOptions, local: LocalFacts): ProvisionSettings {
  const user = (site.vars as Record<string, unknown>)?.[SITE_USER_VAR];
  if (!isString(user)) throw new TypeError(`site "${site.name}": provision runs through the admin account (deploy provision -s ${site.name}), not as a task of deploy run`);
  const base = resolveSite(site, options);
  const text = (key: keyof ProvisionOptions, fallback: string): string => expandSite(pick(site, key, options[key] as PerSite<string>, isString, 'a non-empty string') ?? fallback, site.name);
  const listen = text('listen', '80');
  const enabled = pick(site, 'nginxEnabled', options.nginxEnabled, isStringOrFalse, "a path or false");
  return {
    ...base,
    user,
    origin: pick(site, 'origin', options.origin, isString, 'a repository URL') ?? local.origin,
    branch: pick(site, 'branch', options.branch, isString, 'a branch name') ?? local.branch,
    authorizedKeys: pick(site, 'authorizedKeys', options.authorizedKeys, isStrings, 'a list of public key lines') ?? local.keys,
    cloneAs: pick(site, 'cloneAs', options.cloneAs, isCloneAs, "'site' or 'admin'") ?? (local.forwardAgent ? 'admin' : 'site'),
    gitKnownHosts: pick(site, 'gitKnownHosts', options.gitKnownHosts, isStrings, 'a list of known_hosts lines') ?? [],
    shell: text('shell', '/bin/bash'),
    python: text('python', 'python3'),
    virtualenvArgs: pick(site, 'virtualenvArgs', options.virtualenvArgs, isStrings, 'a list of strings') ?? [],
    vassalSkeleton: text('vassalSkeleton', `${dirname(base.vassal)}/app.skel`),
    uwsgiGroup: text('uwsgiGroup', 'uwsgi'),
    socketDir: pick(site, 'socketDir', options.socketDir, isString, 'a directory'),
    nginxFile: text('nginxFile', '/etc/nginx/sites-available/{site}'),
    nginxEnabled: enabled === false ? undefined : expandSite(enabled ?? '/etc/nginx/sites-enabled/{site}', site.name),
    nginxTest: text('nginxTest', 'nginx -t'),
    nginxReload: text('nginxReload', 'nginx -s reload'),
    serverName: text('serverName', site.name),
    listen,
    checkUrl: text('checkUrl', `http://127.0.0.1:${listenPort(listen)}/`),
    installedCopy: installedCopyOf(site, base.virtualenv, options),
  };
}

/**
 * The operator's side of the defaults: the working copy's origin URL and
 * branch (`git`), and the public keys to authorize: the `.pub` beside
 * `identityFile`, else every `~/.ssh/id_*.pub`, else the agent's
 * (`agentKeys`, i.e. `ssh-add -L`).
 */
export function localFacts(localDir: string, reach: { identityFile?: string; forwardAgent?: boolean }, git: (args: string[]) => string | undefined, agentKeys: () => string | undefined = () => undefined): LocalFacts {
  const identityFile = reach.identityFile;
  // Each is looked up only when read: a site whose vars give origin, branch and keys makes no local call.
  const once = <T>(compute: () => T): (() => T) => {
    let value: { v: T } | undefined;
    return () => (value ??= { v: compute() }).v;
  };
  const origin = once(() => resolveLocalPath(existsSync(localDir) ? git(['-C', localDir, 'remote', 'get-url', 'origin']) : undefined, localDir));
  const branch = once(() => (existsSync(localDir) ? git(['-C', localDir, 'symbolic-ref', '--short', 'HEAD']) : undefined));
  const keys = once(() => {
    const found = operatorKeys(identityFile);
    return found.length > 0 ? found : (agentKeys() ?? '').split('\n').map((line) => line.trim()).filter((line) => /^(ssh-|ecdsa-|sk-)/.test(line));
  });
  return {
    get origin() {
      return origin();
    },
    get branch() {
      return branch();
    },
    get keys() {
      return keys();
    },
    forwardAgent: reach.forwardAgent,
  };
}

/** A relative origin (`../shop.git`) is relative to the working copy; URLs and absolute paths stay. */
function resolveLocalPath(origin: string | undefined, localDir: string): string | undefined {
  if (!origin || /^[a-z][a-z0-9+.-]*:\/\//i.test(origin) || /^[^/]+:/.test(origin) || origin.startsWith('/')) return origin;
  return resolve(localDir, origin);
}

function operatorKeys(identityFile: string | undefined): string[] {
  const expand = (path: string): string => (path.startsWith('~/') ? join(homedir(), path.slice(2)) : path);
  if (identityFile && existsSync(`${expand(identityFile)}.pub`)) return [readFileSync(`${expand(identityFile)}.pub`, 'utf8').trim()];
  const dir = join(homedir(), '.ssh');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => /^id_[a-z0-9_]+\.pub$/.test(name))
    .sort()
    .map((name) => readFileSync(join(dir, name), 'utf8').trim())
    .filter((line) => line !== '');
}

/**
 * The server block written when the deployfile gives no `nginxTemplate`: the
 * seed's `uwsgi_pass` to the vassal's socket, and `~/static` (where
 * `collectstatic` collects) at `/static/`.
 */
export function defaultNginxTemplate(v: ProvisionVars): string {
  return [
    `# Written by deploy provision for the site ${v.site}; provision rewrites it.`,
    'server {',
    `    listen ${v.listen};`,
    `    server_name ${v.serverName};`,
    `    location /static/ { alias /home/${v.user}/static/; }`,
    '    location / {',
    '        include uwsgi_params;',
    `        uwsgi_pass unix:${v.socket ?? `/run/uwsgi/${v.site}.sock`};`,
    '    }',
    '}',
    '',
  ].join('\n');
}
