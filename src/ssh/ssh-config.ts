/**
 * ~/.ssh/config (or `-F FILE`) and /etc/ssh/ssh_config, read with the
 * ssh-config package and interpreted like ssh(1) for the options deployfile
 * uses. Anything given in the deployfile is treated like ssh's command line
 * and wins over these files; see README.md in this folder.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname as localHostname, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import SSHConfig, { LineType, type Line } from 'ssh-config';
import { matchPattern } from './known-hosts.ts';

/** Where ssh config comes from; `-F FILE` replaces both defaults, `-F none` reads nothing. */
export interface SshConfigSource {
  /** `-F FILE`: read only this file (ssh(1) then skips the system file too); `'none'`: no config at all. */
  configFile?: string;
  /** The operator's home: `~` in paths, and where ~/.ssh/config is. */
  home: string;
  /** The system-wide file; default /etc/ssh/ssh_config, null to skip it (tests). */
  systemConfigFile?: string | null;
}

/** A parsed set of config files, ready to be asked about hosts. */
export interface LoadedSshConfig {
  config: SSHConfig;
  /** The files read, in order (Includes expanded). */
  files: string[];
  /** Things ssh(1) would warn about, for the CLI to show once. */
  warnings: string[];
}

const MAX_INCLUDE_DEPTH = 16;

/** `~/x` and `~` with the given home; other paths unchanged. */
export function expandTilde(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

/** Expand a glob with `*`/`?` in any path component (Include takes them); sorted like glob(3). */
function globPath(pattern: string): string[] {
  if (!/[*?]/.test(pattern)) return existsSync(pattern) ? [pattern] : [];
  const parts = pattern.split('/');
  let bases = [parts[0] === '' ? '/' : parts[0] as string];
  for (const part of parts.slice(1)) {
    if (part === '') continue;
    const next: string[] = [];
    for (const base of bases) {
      if (!/[*?]/.test(part)) {
        const path = join(base, part);
        if (existsSync(path)) next.push(path);
        continue;
      }
      let names: string[] = [];
      try {
        names = readdirSync(base).sort();
      } catch {
        continue;
      }
      for (const name of names) {
        if (name.startsWith('.') && !part.startsWith('.')) continue;
        if (matchPattern(part, name)) next.push(join(base, name));
      }
    }
    bases = next;
  }
  return bases;
}

function valueList(value: string | { val: string }[]): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  return value.map((v) => v.val);
}

function readConfigFile(file: string, userConfig: boolean, home: string, out: LoadedSshConfig, depth: number): SSHConfig {
  out.files.push(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    out.warnings.push(`cannot read ssh config ${file}: ${(error as Error).message}`);
    return new SSHConfig();
  }
  let parsed: SSHConfig;
  try {
    parsed = SSHConfig.parse(text);
  } catch (error) {
    out.warnings.push(`cannot parse ssh config ${file}: ${(error as Error).message}`);
    return new SSHConfig();
  }
  return expandIncludes(parsed, userConfig, home, out, depth, file);
}

/**
 * Replace each Include with the lines of the files it names, as ssh(1)
 * does: relative paths are under ~/.ssh for user config and /etc/ssh for
 * the system file. ssh-config itself does not follow Include.
 */
function expandIncludes(config: SSHConfig, userConfig: boolean, home: string, out: LoadedSshConfig, depth: number, from: string): SSHConfig {
  const result = new SSHConfig();
  const included = (line: Line): Line[] => {
    if (line.type !== LineType.DIRECTIVE || !/^include$/i.test(line.param)) return [line];
    if (depth >= MAX_INCLUDE_DEPTH) {
      out.warnings.push(`${from}: Include nested deeper than ${MAX_INCLUDE_DEPTH}; ignored`);
      return [];
    }
    const lines: Line[] = [];
    for (const raw of valueList(line.value)) {
      let path = expandTilde(raw, home);
      if (!isAbsolute(path)) path = join(userConfig ? join(home, '.ssh') : '/etc/ssh', path);
      for (const file of globPath(path)) {
        if (statSync(file).isFile()) lines.push(...readConfigFile(file, userConfig, home, out, depth + 1));
      }
    }
    return lines;
  };
  for (const line of config) {
    if (line.type === LineType.DIRECTIVE && 'config' in line) {
      const inner = new SSHConfig();
      for (const sub of line.config) {
        for (const expanded of included(sub)) {
          if (expanded.type === LineType.DIRECTIVE && 'config' in expanded) {
            // ssh(1) evaluates such blocks only when the enclosing block matched; ssh-config cannot express that.
            out.warnings.push(`${from}: Host/Match blocks inside a file Included from a Host/Match block are ignored`);
            continue;
          }
          inner.push(expanded);
        }
      }
      line.config = inner;
      result.push(line);
    } else {
      result.push(...included(line));
    }
  }
  return result;
}

/**
 * Read ssh config as ssh(1) would: `-F FILE` alone, else ~/.ssh/config then
 * /etc/ssh/ssh_config (the first value found for an option wins, so the
 * user's file comes first).
 *
 * @example loadSshConfig({ home: os.homedir() })
 */
export function loadSshConfig(source: SshConfigSource): LoadedSshConfig {
  const out: LoadedSshConfig = { config: new SSHConfig(), files: [], warnings: [] };
  if (source.configFile === 'none') return out;
  if (source.configFile !== undefined) {
    const file = expandTilde(source.configFile, source.home);
    if (!existsSync(file)) throw new Error(`ssh config file ${source.configFile} (-F) does not exist`);
    out.config.push(...readConfigFile(file, true, source.home, out, 0));
    return out;
  }
  const user = join(source.home, '.ssh', 'config');
  if (existsSync(user)) out.config.push(...readConfigFile(user, true, source.home, out, 0));
  const system = source.systemConfigFile === undefined ? '/etc/ssh/ssh_config' : source.systemConfigFile;
  if (system !== null && existsSync(system)) out.config.push(...readConfigFile(system, false, source.home, out, 0));
  return out;
}

/** What ssh config says about one host, with paths expanded; undefined where it says nothing. */
export interface SshHostConfig {
  /** The name looked up (the deployfile's `host`, or a jump host's name). */
  host: string;
  /** HostName, or the name itself. */
  hostName: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  identitiesOnly: boolean;
  /** IdentityAgent: a socket path, or 'none'. */
  identityAgent?: string;
  /** ProxyJump as written (comma-separated hops, or 'none'). */
  proxyJump?: string;
  /** ProxyCommand: not supported; reported so the connection is not silently made another way. */
  proxyCommand?: string;
  connectTimeoutMs?: number;
  serverAliveIntervalMs?: number;
  serverAliveCountMax?: number;
  /** ForwardAgent: yes/no, or the socket to forward. */
  forwardAgent?: boolean | string;
  userKnownHostsFiles?: string[];
  globalKnownHostsFiles?: string[];
  hashKnownHosts: boolean;
  hostKeyAlias?: string;
  strictHostKeyChecking?: string;
}

/** What %-tokens and ${VAR} expand to. */
export interface ExpandContext {
  home: string;
  env: NodeJS.ProcessEnv;
  host: string;
  hostName: string;
  user: string;
  port: number;
}

/** ssh_config(5) TOKENS and ENVIRONMENT VARIABLES for path options (IdentityFile, IdentityAgent, UserKnownHostsFile...). */
export function expandPath(value: string, ctx: ExpandContext): string {
  const local = safeUserInfo();
  const withTokens = value.replace(/%(.)/g, (all, token: string) => {
    switch (token) {
      case '%':
        return '%';
      case 'd':
        return ctx.home;
      case 'h':
        return ctx.hostName;
      case 'n':
        return ctx.host;
      case 'p':
        return String(ctx.port);
      case 'r':
        return ctx.user;
      case 'u':
        return local.username;
      case 'i':
        return String(local.uid);
      case 'l':
        return localHostname();
      default:
        return all;
    }
  });
  const withEnv = withTokens.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_all, name: string) => ctx.env[name] ?? '');
  return expandTilde(withEnv, ctx.home);
}

function safeUserInfo(): { username: string; uid: number } {
  try {
    const info = userInfo();
    return { username: info.username, uid: info.uid };
  } catch {
    return { username: process.env.USER ?? '', uid: process.getuid?.() ?? -1 };
  }
}

function yes(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (v === 'yes' || v === 'true') return true;
  if (v === 'no' || v === 'false') return false;
  return undefined;
}

function seconds(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`ssh config: ${option} ${value} is not a number of seconds`);
  return n * 1000;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function list(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(/\s+/)).filter(Boolean);
}

/**
 * What ssh config says for `host`, evaluated like ssh(1): Host and Match
 * (host, originalhost, user, localuser, all) blocks in order, the first value
 * for each option winning. `user` is the user given on the "command line"
 * (the deployfile); when given, config's User is not consulted, exactly as
 * `ssh user@host` overrides it. `Match exec` is never evaluated (never matches).
 *
 * @example resolveSshHost(loadSshConfig({ home }), 'web1', { home, env: process.env })
 */
export function resolveSshHost(
  loaded: LoadedSshConfig,
  host: string,
  options: { home: string; env: NodeJS.ProcessEnv; user?: string; port?: number },
): SshHostConfig {
  const computed = loaded.config.compute(options.user ? { Host: host, User: options.user } : { Host: host }, { ignoreCase: true, matchExec: false });
  const get = (key: string): string | undefined => first(computed[key]);
  const hostName = get('hostname') ?? host;
  const portText = get('port');
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`ssh config: Port ${portText} for host ${host} is not a port number`);
  }
  const user = get('user');
  const ctx: ExpandContext = {
    home: options.home,
    env: options.env,
    host,
    // HostName may itself contain %h (the name given).
    hostName: hostName.replace(/%h/g, host),
    user: options.user ?? user ?? safeUserInfo().username,
    port: options.port ?? port ?? 22,
  };
  const paths = (value: string[] | undefined): string[] | undefined => value?.map((v) => expandPath(v, ctx));
  const forward = get('forwardagent');
  let forwardAgent: boolean | string | undefined = yes(forward);
  if (forward !== undefined && forwardAgent === undefined) forwardAgent = forward.startsWith('$') ? (options.env[forward.slice(1)] ?? false) : expandPath(forward, ctx);
  const agent = get('identityagent');
  let identityAgent: string | undefined;
  if (agent !== undefined) {
    if (agent.toLowerCase() === 'none') identityAgent = 'none';
    else if (agent === 'SSH_AUTH_SOCK') identityAgent = options.env.SSH_AUTH_SOCK ?? 'none';
    else if (agent.startsWith('$')) identityAgent = options.env[agent.slice(1)] ?? 'none';
    else identityAgent = expandPath(agent, ctx);
  }
  const alive = get('serveraliveinterval');
  const countMax = get('serveralivecountmax');
  return {
    host,
    hostName: ctx.hostName,
    user,
    port,
    identityFiles: (paths(list(computed.identityfile)) ?? []).filter((f) => f.toLowerCase() !== 'none'),
    identitiesOnly: yes(get('identitiesonly')) ?? false,
    identityAgent,
    proxyJump: get('proxyjump'),
    proxyCommand: get('proxycommand'),
    connectTimeoutMs: seconds(get('connecttimeout'), 'ConnectTimeout'),
    serverAliveIntervalMs: seconds(alive, 'ServerAliveInterval'),
    serverAliveCountMax: countMax === undefined ? undefined : Number(countMax),
    forwardAgent,
    userKnownHostsFiles: paths(list(computed.userknownhostsfile)),
    globalKnownHostsFiles: paths(list(computed.globalknownhostsfile)),
    hashKnownHosts: yes(get('hashknownhosts')) ?? false,
    hostKeyAlias: get('hostkeyalias'),
    strictHostKeyChecking: get('stricthostkeychecking')?.toLowerCase(),
  };
}

/** One hop of a ProxyJump list. */
export interface JumpSpec {
  host: string;
  user?: string;
  port?: number;
}

/**
 * Parse ProxyJump: `[user@]host[:port]` or `ssh://[user@]host[:port]`,
 * comma-separated, in the order they are passed through; `none` is empty.
 *
 * @example parseProxyJump('deploy@bastion:2222,inner') // [{ host: 'bastion', user: 'deploy', port: 2222 }, { host: 'inner' }]
 */
export function parseProxyJump(value: string): JumpSpec[] {
  if (value.trim().toLowerCase() === 'none') return [];
  return value.split(',').map((raw) => {
    let text = raw.trim();
    if (text === '') throw new Error(`ProxyJump ${value}: empty hop`);
    if (text.startsWith('ssh://')) text = text.slice(6).replace(/\/$/, '');
    let user: string | undefined;
    const at = text.lastIndexOf('@');
    if (at >= 0) {
      user = text.slice(0, at);
      text = text.slice(at + 1);
    }
    let host = text;
    let portText: string | undefined;
    const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
    if (bracket) {
      host = bracket[1] as string;
      portText = bracket[2];
    } else if ((text.match(/:/g) ?? []).length === 1) {
      [host, portText] = text.split(':') as [string, string];
    }
    let port: number | undefined;
    if (portText !== undefined) {
      port = Number(portText);
      if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`ProxyJump ${value}: ${portText} is not a port number`);
    }
    if (!host) throw new Error(`ProxyJump ${value}: a hop has no host`);
    return { host, user: user || undefined, port };
  });
}

/** The file name used in messages: `~/.ssh/id_ed25519` rather than the full path. */
export function displayPath(path: string, home: string): string {
  if (path === home) return '~';
  if (path.startsWith(`${home}/`)) return `~/${path.slice(home.length + 1)}`;
  return path;
}
