/**
 * The connection plan: who to connect to for a site, through which jump
 * hosts, with which keys and known_hosts files, from the deployfile and ssh
 * config (the deployfile plays ssh's command line, so it wins). Pure
 * planning: nothing here opens a socket.
 */
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { ResolvedSite } from '../config/load.ts';
import { hostPattern } from './known-hosts.ts';
import { localUser } from './env.ts';
import { runStateOf } from './run-state.ts';
import type { SshSettings } from './settings.ts';
import { displayPath, expandTilde, parseProxyJump, resolveSshHost, type JumpSpec, type SshHostConfig } from './ssh-config.ts';

/** One SSH server to reach: the site's host or a jump host, fully resolved. */
export interface Endpoint {
  /** The name as given (deployfile host, or ProxyJump hop). */
  name: string;
  hostName: string;
  port: number;
  user: string;
  /** How known_hosts names it: HostKeyAlias, or `hostPattern(hostName, port)`. */
  knownHostsName: string;
  knownHostsFiles: string[];
  /** Where a new key is recorded: the first UserKnownHostsFile. */
  recordFile: string | undefined;
  hashKnownHosts: boolean;
  /** StrictHostKeyChecking from ssh config, lowercased. */
  strictHostKeyChecking: string | undefined;
  /** In the order tried; `explicit` ones are reported when missing. */
  identityFiles: { path: string; label: string; explicit: boolean }[];
  identitiesOnly: boolean;
  agentSocket: string | undefined;
  connectTimeoutMs: number | undefined;
  keepaliveIntervalMs: number | undefined;
  keepaliveCountMax: number | undefined;
  /** The agent socket to forward, or false. */
  forwardAgent: string | false;
}

/** Everything needed to connect to a site: the hops in order, then the site's host. */
export interface ConnectionPlan {
  site: string;
  jumps: Endpoint[];
  target: Endpoint;
  hostKeyChecking: boolean;
}

/** OpenSSH's default identity files, in ssh_config(5)'s order (ssh2 has no use for the security-key ones). */
export const DEFAULT_IDENTITY_FILES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_dsa'];

const MAX_JUMPS = 8;

interface EndpointInput {
  name: string;
  /** Given on the "command line" (deployfile or ProxyJump hop); wins over config. */
  user?: string;
  /** Used when neither the command line nor config names a user. */
  defaultUser: string;
  port?: number;
  identityFile?: string;
  forwardAgent?: boolean;
}

function endpointFor(input: EndpointInput, host: SshHostConfig, settings: SshSettings, home: string, env: NodeJS.ProcessEnv): Endpoint {
  const port = input.port ?? host.port ?? 22;
  const user = input.user ?? host.user ?? input.defaultUser;
  const knownHostsName = host.hostKeyAlias ?? hostPattern(host.hostName, port);
  const userFiles = settings.knownHostsFiles ?? host.userKnownHostsFiles ?? [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`];
  const globalFiles = settings.knownHostsFiles ? [] : (settings.globalKnownHostsFiles ?? host.globalKnownHostsFiles ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']);
  const abs = (path: string): string => (isAbsolute(path) ? path : resolve(path));
  const identityFiles: Endpoint['identityFiles'] = [];
  if (input.identityFile) {
    const path = abs(expandTilde(input.identityFile, home));
    identityFiles.push({ path, label: input.identityFile, explicit: true });
  }
  for (const file of host.identityFiles) {
    const path = abs(file);
    if (!identityFiles.some((f) => f.path === path)) identityFiles.push({ path, label: displayPath(path, home), explicit: true });
  }
  if (identityFiles.length === 0) {
    for (const name of DEFAULT_IDENTITY_FILES) identityFiles.push({ path: `${home}/.ssh/${name}`, label: `~/.ssh/${name}`, explicit: false });
  }
  let agentSocket: string | undefined = settings.agentSocket === null ? undefined : (settings.agentSocket ?? env.SSH_AUTH_SOCK ?? undefined);
  if (host.identityAgent !== undefined) agentSocket = host.identityAgent === 'none' ? undefined : host.identityAgent;
  if (agentSocket === '') agentSocket = undefined;
  const forward = input.forwardAgent ?? host.forwardAgent ?? false;
  return {
    name: input.name,
    hostName: host.hostName,
    port,
    user,
    knownHostsName,
    knownHostsFiles: [...userFiles, ...globalFiles],
    recordFile: userFiles[0],
    hashKnownHosts: host.hashKnownHosts,
    strictHostKeyChecking: host.strictHostKeyChecking,
    identityFiles,
    identitiesOnly: host.identitiesOnly,
    agentSocket,
    connectTimeoutMs: host.connectTimeoutMs,
    keepaliveIntervalMs: host.serverAliveIntervalMs,
    keepaliveCountMax: host.serverAliveCountMax,
    forwardAgent: forward === true ? (agentSocket ?? false) : forward === false ? false : forward,
  };
}

/**
 * Work out how to reach a site, like ssh(1) with the deployfile as its
 * command line: `host` is looked up in ssh config (HostName, User, Port,
 * IdentityFile, ProxyJump, ...); the deployfile's user, port, identityFile,
 * forwardAgent and proxyJump win over what config says. Jump hosts are
 * resolved through ssh config too (and the first hop's own ProxyJump is
 * followed, as `ssh -J` does).
 *
 * @throws Error for unusable configuration (a bad ProxyJump, ProxyCommand).
 */
export function planConnection(site: ResolvedSite, settings: SshSettings = {}): ConnectionPlan {
  const home = settings.home ?? homedir();
  const env = settings.env ?? process.env;
  const state = runStateOf(settings);
  const loaded = state.sshConfig({ configFile: settings.configFile, home, systemConfigFile: settings.systemConfigFile });
  for (const warning of loaded.warnings) state.warnOnce(site.name, warning, settings.onWarning);

  const explicitUser = site.userIsDefault ? undefined : site.user;
  const targetConfig = resolveSshHost(loaded, site.host, { home, env, user: explicitUser, port: site.port });
  const target = endpointFor(
    { name: site.host, user: explicitUser, defaultUser: site.user, port: site.port, identityFile: site.identityFile, forwardAgent: site.forwardAgent },
    targetConfig,
    settings,
    home,
    env,
  );
  const jumpText = site.proxyJump ?? targetConfig.proxyJump;
  if (jumpText === undefined && targetConfig.proxyCommand && targetConfig.proxyCommand.toLowerCase() !== 'none') {
    throw new Error(
      `ssh config sets ProxyCommand for ${site.host} (${targetConfig.proxyCommand}); deployfile does not run proxy commands. Use ProxyJump (or proxyJump on the site) instead.`,
    );
  }

  const hop = (spec: JumpSpec): { endpoint: Endpoint; config: SshHostConfig } => {
    const config = resolveSshHost(loaded, spec.host, { home, env, user: spec.user, port: spec.port });
    return { endpoint: endpointFor({ name: spec.host, user: spec.user, defaultUser: localUser(env), port: spec.port }, config, settings, home, env), config };
  };
  const expand = (specs: JumpSpec[], depth: number): Endpoint[] => {
    if (specs.length === 0) return [];
    if (depth > MAX_JUMPS) throw new Error(`ProxyJump for ${site.host} nests more than ${MAX_JUMPS} jump hosts (a loop in ssh config?)`);
    const [first, ...rest] = specs as [JumpSpec, ...JumpSpec[]];
    const resolved = hop(first);
    // Only the first hop is reached on its own, so only its own ProxyJump applies (as with ssh -J).
    const before = resolved.config.proxyJump ? expand(parseProxyJump(resolved.config.proxyJump), depth + 1) : [];
    return [...before, resolved.endpoint, ...rest.map((spec) => hop(spec).endpoint)];
  };
  const jumps = jumpText ? expand(parseProxyJump(jumpText), 0) : [];
  if (jumps.length > MAX_JUMPS) throw new Error(`ProxyJump for ${site.host} has more than ${MAX_JUMPS} jump hosts`);

  const strict = targetConfig.strictHostKeyChecking;
  if (strict === 'no' || strict === 'off') {
    state.warnOnce(site.name, `ssh config sets StrictHostKeyChecking ${strict} for ${site.host}; deployfile verifies host keys anyway (set hostKeyChecking: false on the site to opt out)`, settings.onWarning);
  }
  return { site: site.name, jumps, target, hostKeyChecking: site.hostKeyChecking !== false };
}
