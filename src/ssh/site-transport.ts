/**
 * From a deployfile site to a verified, authenticated SSH connection, the
 * way ssh(1) would make it: ~/.ssh/config, known_hosts, the agent, identity
 * files, ProxyJump. The deployfile plays the part of ssh's command line, so
 * what it says wins over ssh config (see README.md in this folder).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import ssh2 from 'ssh2';

const { utils } = ssh2;
import type { ResolvedSite } from '../config/load.ts';
import { ConnectionError } from '../core/errors.ts';
import type { QuestionQueue } from '../core/prompter.ts';
import type { Redactor } from '../core/secret.ts';
import { SshTransport, type AuthMethod, type LoadedKey } from '../transports/ssh.ts';
import {
  algorithmsForKeyType,
  appendKnownHost,
  checkHostKeyByName,
  fingerprint,
  hostPattern,
  keyTypeLabel,
  keyTypeOf,
  knownKeyTypes,
  type HostKeyVerdict,
} from './known-hosts.ts';
import { displayPath, expandTilde, loadSshConfig, parseProxyJump, resolveSshHost, type JumpSpec, type LoadedSshConfig, type SshHostConfig } from './ssh-config.ts';

/** The question asked on a TTY for an unknown host key, with the text ssh(1) would print. */
export interface HostKeyQuestion {
  site: string;
  /** The host as known_hosts will name it (`[127.0.0.1]:2222`). */
  host: string;
  keyType: string;
  /** `SHA256:...`, as OpenSSH prints it; a user may answer by typing it. */
  fingerprint: string;
  /** Extra warning, e.g. other key types are known for this host. */
  warning?: string;
  /** The whole question, ready to show: "The authenticity of host ... Are you sure you want to continue connecting (yes/no)?" */
  text: string;
}

/** Asked for an encrypted key's passphrase. */
export interface PassphraseRequest {
  site: string;
  /** Full path, or `DEPLOY_SSH_KEY` for a key given in the environment. */
  keyPath: string;
  /** `~/.ssh/id_ed25519`: how to name it in the prompt. */
  label: string;
  /** 1 for the first ask; a wrong answer is asked again up to 3 times, as ssh(1) does. */
  attempt: number;
}

/**
 * What the CLI tells the SSH layer for a run. Pass the same object for every
 * site of the run: answers (passphrases, accepted host keys) and the parsed
 * ssh config are shared through it, so each is asked or read once.
 *
 * @example
 * const ssh: SshSettings = {
 *   ...sshSettingsFromEnv(process.env),
 *   configFile: flags.sshConfig,
 *   acceptNewHostKeys: flags.acceptNewHostKeys,
 *   askHostKey: tty ? (q) => confirm(q.text) : undefined,
 *   passphrase: passphraseProvider({ env: process.env, ask: tty ? (r) => password(`Enter passphrase for key '${r.label}':`) : undefined }),
 *   redactor,
 *   onWarning: (site, message) => bus.emit({ type: 'log', site, level: 'warn', message }),
 * };
 * transportFor: (site) => sshTransportFor(site, ssh)
 */
export interface SshSettings {
  /** `-F FILE`: this ssh config instead of ~/.ssh/config and /etc/ssh/ssh_config; `'none'` reads none. */
  configFile?: string;
  /** The system-wide ssh config; default /etc/ssh/ssh_config, null skips it. */
  systemConfigFile?: string | null;
  /** `--accept-new-host-keys` (OpenSSH's StrictHostKeyChecking=accept-new): record unknown hosts' keys without asking. Changed keys are still refused. */
  acceptNewHostKeys?: boolean;
  /** Ask about an unknown host key (on a TTY only); resolve true to connect and record the key. Without it unknown hosts are refused. */
  askHostKey?: (question: HostKeyQuestion) => Promise<boolean>;
  /** The run's one question queue (src/prompts): each host key check and its question take one turn in it. Without it, checks queue among themselves. */
  questions?: QuestionQueue;
  /** The passphrase of an encrypted key, or undefined when none can be had. See passphraseProvider(). */
  passphrase?: (request: PassphraseRequest) => Promise<string | undefined>;
  /** A private key as text (env `DEPLOY_SSH_KEY`, e.g. a CI secret), tried first. */
  privateKey?: string;
  /** The agent socket; default `SSH_AUTH_SOCK` from `env`; null: no agent. */
  agentSocket?: string | null;
  /** Passphrases are added here as they are learnt, so no view, log or error shows them. */
  redactor?: Redactor;
  /** Things every run should say (host key checking off, a key recorded, config ignored). */
  onWarning?: (site: string, message: string) => void;
  /** Replaces the known_hosts files from ssh config/defaults (all read; new keys go to the first). */
  knownHostsFiles?: string[];
  /** Replaces /etc/ssh/ssh_known_hosts{,2} (and GlobalKnownHostsFile); tests pass []. */
  globalKnownHostsFiles?: string[];
  /** Handshake timeout when ssh config sets no ConnectTimeout; default 20 s. */
  readyTimeoutMs?: number;
  /** The operator's home (`~`); default os.homedir(). Tests point it at a temp dir. */
  home?: string;
  /** For ${VAR} in ssh config and SSH_AUTH_SOCK; default process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The settings that come from the environment: `DEPLOY_SSH_KEY` (a private
 * key's text) and the agent socket.
 */
export function sshSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<SshSettings, 'privateKey' | 'env'> {
  return { privateKey: env.DEPLOY_SSH_KEY || undefined, env };
}

/**
 * A passphrase source: `DEPLOY_SSH_PASSPHRASE` first (CI; used once per key,
 * never asked again when wrong), then `ask` (a TTY prompt), if given.
 *
 * @example passphraseProvider({ env: process.env, ask: (r) => password({ message: `Enter passphrase for key '${r.label}':` }) })
 */
export function passphraseProvider(options: { env?: NodeJS.ProcessEnv; ask?: (request: PassphraseRequest) => Promise<string | undefined> }): (request: PassphraseRequest) => Promise<string | undefined> {
  const fromEnv = (options.env ?? process.env).DEPLOY_SSH_PASSPHRASE;
  return async (request) => {
    if (fromEnv !== undefined && fromEnv !== '') return request.attempt === 1 ? fromEnv : undefined;
    return options.ask?.(request);
  };
}

/**
 * The sudo password for `c.sudo`, learnt once per run: `DEPLOY_SUDO_PASSWORD`,
 * else asked (on a TTY) the first time a task needs it; added to the
 * redactor before anything can print it.
 *
 * @example execute({ ..., sudoPassword: sudoPasswordSource({ env: process.env, ask: tty ? () => password({ message: 'sudo password:' }) : undefined, redactor }) })
 */
export function sudoPasswordSource(options: { env?: NodeJS.ProcessEnv; ask?: () => Promise<string | undefined>; redactor?: Redactor }): () => Promise<string | undefined> {
  let answer: Promise<string | undefined> | undefined;
  return () => {
    answer ??= (async () => {
      const fromEnv = (options.env ?? process.env).DEPLOY_SUDO_PASSWORD;
      const password = fromEnv !== undefined && fromEnv !== '' ? fromEnv : await options.ask?.();
      if (password) options.redactor?.add(password);
      return password || undefined;
    })();
    return answer;
  };
}

// ---------------------------------------------------------------------------
// Shared per run

interface RunState {
  config?: LoadedSshConfig;
  configError?: Error;
  /** Loaded keys per file, so a passphrase is asked once per key per run. */
  keys: Map<string, Promise<LoadedKey | { skip: string }>>;
  /** Host keys accepted in this run (also when recording them failed). */
  accepted: Set<string>;
  /** Host keys the user said no to: other sites on that server are refused without asking again. */
  rejected: Set<string>;
  /** Host key questions and recording, one at a time. */
  hostKeyQueue: Promise<unknown>;
  warned: Set<string>;
}

const states = new WeakMap<SshSettings, RunState>();

function stateOf(settings: SshSettings): RunState {
  let state = states.get(settings);
  if (!state) {
    state = { keys: new Map(), accepted: new Set(), rejected: new Set(), hostKeyQueue: Promise.resolve(), warned: new Set() };
    states.set(settings, state);
  }
  return state;
}

function warnOnce(settings: SshSettings, state: RunState, site: string, message: string): void {
  if (state.warned.has(message)) return;
  state.warned.add(message);
  settings.onWarning?.(site, message);
}

function configOf(settings: SshSettings, state: RunState, home: string): LoadedSshConfig {
  if (state.configError) throw state.configError;
  if (!state.config) {
    try {
      state.config = loadSshConfig({ configFile: settings.configFile, home, systemConfigFile: settings.systemConfigFile });
    } catch (error) {
      state.configError = error instanceof Error ? error : new Error(String(error));
      throw state.configError;
    }
  }
  return state.config;
}

// ---------------------------------------------------------------------------
// Planning: who to connect to, through which hops, with what

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

/** ssh(1)'s default user for jump hosts: the local user name. */
function localUser(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    // os.userInfo throws for uids without a passwd entry (containers).
    return env.USER ?? env.LOGNAME ?? '';
  }
}

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
  const state = stateOf(settings);
  const loaded = configOf(settings, state, home);
  for (const warning of loaded.warnings) warnOnce(settings, state, site.name, warning);

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
    warnOnce(settings, state, site.name, `ssh config sets StrictHostKeyChecking ${strict} for ${site.host}; deployfile verifies host keys anyway (set hostKeyChecking: false on the site to opt out)`);
  }
  return { site: site.name, jumps, target, hostKeyChecking: site.hostKeyChecking !== false };
}

// ---------------------------------------------------------------------------
// Authentication

function readPublicBlob(path: string): Buffer | undefined {
  for (const candidate of [`${path}.pub`, path]) {
    try {
      if (!existsSync(candidate)) continue;
      const parsed = utils.parseKey(readFileSync(candidate));
      if (!(parsed instanceof Error)) return parsed.getPublicSSH();
    } catch {
      // Unreadable: this file just adds no agent key.
    }
  }
  return undefined;
}

function loadKey(data: string | Buffer, keyPath: string, label: string, site: string, settings: SshSettings): Promise<LoadedKey | { skip: string }> {
  return (async () => {
    const plain = utils.parseKey(data);
    if (!(plain instanceof Error)) {
      return plain.isPrivateKey() ? { privateKey: plain } : { skip: 'a public key, not a private one (and the agent has no matching key)' };
    }
    if (!/encrypt|passphrase/i.test(plain.message)) return { skip: `unusable (${plain.message})` };
    if (!settings.passphrase) return { skip: 'encrypted, and no passphrase available (set DEPLOY_SSH_PASSPHRASE, or run on a terminal)' };
    for (let attempt = 1; attempt <= 3; attempt++) {
      const passphrase = await settings.passphrase({ site, keyPath, label, attempt });
      if (passphrase === undefined) return { skip: attempt === 1 ? 'encrypted, and no passphrase given' : 'wrong passphrase' };
      // Even a wrong passphrase is a secret (often a typo of the right one).
      settings.redactor?.add(passphrase);
      const parsed = utils.parseKey(data, passphrase);
      if (!(parsed instanceof Error)) return { privateKey: parsed };
    }
    return { skip: 'wrong passphrase' };
  })();
}

/**
 * The authentication methods for an endpoint, in OpenSSH's order: a key
 * from `DEPLOY_SSH_KEY`, then the agent (only the configured keys under
 * IdentitiesOnly), then the identity files, read lazily so a passphrase is
 * asked only when the agent did not get in.
 */
export function authMethodsFor(endpoint: Endpoint, site: string, settings: SshSettings): AuthMethod[] {
  const state = stateOf(settings);
  const methods: AuthMethod[] = [];
  if (settings.privateKey) {
    const data = settings.privateKey;
    methods.push({
      type: 'lazy-key',
      label: 'key from DEPLOY_SSH_KEY',
      load: () => cached(state, 'env:DEPLOY_SSH_KEY', () => loadKey(data, 'DEPLOY_SSH_KEY', 'the key in DEPLOY_SSH_KEY', site, settings)),
    });
  }
  const present = endpoint.identityFiles.filter((f) => f.explicit || existsSync(f.path));
  if (endpoint.agentSocket) {
    let onlyKeys: Buffer[] | undefined;
    if (endpoint.identitiesOnly) {
      onlyKeys = present.map((f) => readPublicBlob(f.path)).filter((b): b is Buffer => b !== undefined);
      if (settings.privateKey) {
        const parsed = utils.parseKey(settings.privateKey);
        if (!(parsed instanceof Error)) onlyKeys.push(parsed.getPublicSSH());
      }
    }
    methods.push({ type: 'agent', socket: endpoint.agentSocket, label: 'agent', onlyKeys });
  }
  for (const file of present) {
    methods.push({
      type: 'lazy-key',
      label: file.label,
      load: () =>
        cached(state, `file:${file.path}`, async () => {
          if (!existsSync(file.path)) return { skip: 'no such file' };
          let data: Buffer;
          try {
            data = readFileSync(file.path);
          } catch (error) {
            return { skip: `unreadable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
          }
          return loadKey(data, file.path, file.label, site, settings);
        }),
    });
  }
  return methods;
}

function cached(state: RunState, id: string, load: () => Promise<LoadedKey | { skip: string }>): Promise<LoadedKey | { skip: string }> {
  let entry = state.keys.get(id);
  if (!entry) {
    entry = load();
    state.keys.set(id, entry);
  }
  return entry;
}

// ---------------------------------------------------------------------------
// Host keys

/** The text ssh(1) prints before asking about an unknown host key. */
export function hostKeyQuestionText(q: { site: string; host: string; keyType: string; fingerprint: string; warning?: string }): string {
  return [
    `The authenticity of host '${q.host}' (site ${q.site}) can't be established.`,
    `${keyTypeLabel(q.keyType)} key fingerprint is ${q.fingerprint}.`,
    ...(q.warning ? [q.warning] : []),
    'Are you sure you want to continue connecting (yes/no)?',
  ].join('\n');
}

function refusalFor(verdict: Exclude<HostKeyVerdict, { status: 'match' }>, endpoint: Endpoint, home: string): string {
  const name = endpoint.knownHostsName;
  const where = (file: string, line: number): string => `${displayPath(file, home)}:${line}`;
  switch (verdict.status) {
    case 'revoked':
      return `the host key of ${name} (${keyTypeLabel(verdict.keyType)} ${verdict.actual}) is marked @revoked in ${where(verdict.file, verdict.line)}; refusing to connect, nothing was run.`;
    case 'changed':
      return [
        `HOST KEY FOR ${name} HAS CHANGED: refusing to connect, nothing was run.`,
        `  Someone could be intercepting the connection (man-in-the-middle), or the server was reinstalled.`,
        `  known_hosts has:  ${keyTypeLabel(verdict.keyType)} ${verdict.expected}  (${where(verdict.file, verdict.line)})`,
        `  server offered:   ${keyTypeLabel(verdict.keyType)} ${verdict.actual}`,
        `  Only once you have checked the new key with the server's administrator, remove the old one:`,
        `    ssh-keygen -R '${name}' -f ${verdict.file}    (or delete line ${verdict.line} of ${verdict.file})`,
      ].join('\n');
    case 'unknown': {
      const fp = `${keyTypeLabel(verdict.keyType)} ${verdict.actual}`;
      if (verdict.certAuthorities.length > 0) {
        const ca = verdict.certAuthorities[0]!;
        return [
          `${name} is trusted through a @cert-authority line (${where(ca.file, ca.line)}), but deployfile's SSH library (ssh2) cannot check host certificates; the server offered a plain key (${fp}).`,
          `  Refusing to connect. After checking that key, add it to known_hosts: ssh-keyscan -p ${endpoint.port} ${endpoint.hostName} >> ~/.ssh/known_hosts`,
        ].join('\n');
      }
      if (verdict.otherKeys.length > 0) {
        const other = verdict.otherKeys.map((k) => `${keyTypeLabel(k.keyType)} ${k.fingerprint} (${where(k.file, k.line)})`).join(', ');
        return [
          `the server ${name} offered a ${fp} key, but known_hosts has only keys of other types for it: ${other}. Refusing to connect, nothing was run.`,
          `  The server may have been reinstalled, or someone may be intercepting the connection; check with its administrator.`,
        ].join('\n');
      }
      return [
        `the host key of ${name} is not known (${fp}); refusing to connect without asking, nothing was run.`,
        `  After checking that fingerprint with the server's administrator, run once with --accept-new-host-keys, or on a terminal, or add it: ssh-keyscan -p ${endpoint.port} ${endpoint.hostName} >> ~/.ssh/known_hosts`,
      ].join('\n');
    }
  }
}

function hostVerifierFor(endpoint: Endpoint, site: string, settings: SshSettings, home: string): (key: Buffer) => Promise<true | string> {
  const state = stateOf(settings);
  const acceptedId = (key: Buffer): string => `${endpoint.knownHostsName} ${key.toString('base64')}`;
  const record = (key: Buffer, how: string): void => {
    state.accepted.add(acceptedId(key));
    const label = `${keyTypeLabel(keyTypeOf(key))} ${fingerprint(key)}`;
    if (!endpoint.recordFile) {
      settings.onWarning?.(site, `accepted the host key of ${endpoint.knownHostsName} (${label}) ${how} for this run only: no UserKnownHostsFile to record it in`);
      return;
    }
    try {
      const line = appendKnownHost(endpoint.recordFile, endpoint.knownHostsName, key, { hash: endpoint.hashKnownHosts });
      settings.onWarning?.(site, `Permanently added ${endpoint.knownHostsName} (${label}) to ${displayPath(endpoint.recordFile, home)}:${line} (${how})`);
    } catch (error) {
      settings.onWarning?.(site, `accepted the host key of ${endpoint.knownHostsName} (${label}) ${how}, but could not record it in ${endpoint.recordFile}: ${(error as Error).message}`);
    }
  };

  return async (key) => {
    const verdict = checkHostKeyByName(endpoint.knownHostsFiles, endpoint.knownHostsName, key);
    if (verdict.status === 'match') return true;
    if (verdict.status !== 'unknown') return refusalFor(verdict, endpoint, home);
    if (state.accepted.has(acceptedId(key))) return true;
    if (verdict.certAuthorities.length > 0) return refusalFor(verdict, endpoint, home);

    // One question (or one write) at a time: parallel sites often share a server.
    const check = async (): Promise<true | string> => {
      const again = checkHostKeyByName(endpoint.knownHostsFiles, endpoint.knownHostsName, key);
      if (again.status === 'match' || state.accepted.has(acceptedId(key))) return true;
      if (again.status !== 'unknown') return refusalFor(again, endpoint, home);
      const no = `host key of ${endpoint.knownHostsName} (${keyTypeLabel(again.keyType)} ${again.actual}) not accepted: you answered no. Nothing was run.`;
      if (state.rejected.has(acceptedId(key))) return no;
      const strict = endpoint.strictHostKeyChecking === 'yes';
      const acceptNew = settings.acceptNewHostKeys || endpoint.strictHostKeyChecking === 'accept-new';
      if (!strict && acceptNew && again.otherKeys.length === 0) {
        record(key, settings.acceptNewHostKeys ? '--accept-new-host-keys' : 'StrictHostKeyChecking accept-new');
        return true;
      }
      if (!strict && settings.askHostKey) {
        const warning =
          again.otherKeys.length > 0
            ? `WARNING: known_hosts has a key of another type for this host: ${again.otherKeys.map((k) => `${keyTypeLabel(k.keyType)} ${k.fingerprint} (${displayPath(k.file, home)}:${k.line})`).join(', ')}.`
            : undefined;
        const question = { site, host: endpoint.knownHostsName, keyType: again.keyType, fingerprint: again.actual, warning };
        const yes = await settings.askHostKey({ ...question, text: hostKeyQuestionText(question) });
        if (yes) {
          record(key, 'you answered yes');
          return true;
        }
        state.rejected.add(acceptedId(key));
        return no;
      }
      const refusal = refusalFor(again, endpoint, home);
      return strict ? `${refusal}\n  (ssh config sets StrictHostKeyChecking yes for this host)` : refusal;
    };
    if (settings.questions) return settings.questions.turn(check);
    const turn = state.hostKeyQueue.then(check, check);
    state.hostKeyQueue = turn.catch(() => undefined);
    return turn;
  };
}

// ---------------------------------------------------------------------------
// Transports

function transportFor(endpoint: Endpoint, site: string, settings: SshSettings, home: string, extra: { description: string; checking: boolean; openSocket?: SshTransportOpenSocket; onClose?: () => Promise<void>; forwardAgent: boolean }): SshTransport {
  const knownTypes = knownKeyTypes(endpoint.knownHostsFiles, endpoint.knownHostsName);
  const verify = hostVerifierFor(endpoint, site, settings, home);
  const warned = { done: false };
  return new SshTransport({
    site,
    description: extra.description,
    host: endpoint.hostName,
    port: endpoint.port,
    username: endpoint.user,
    auth: authMethodsFor(endpoint, site, settings),
    hostKeyAlgorithms: knownTypes.flatMap(algorithmsForKeyType),
    readyTimeoutMs: endpoint.connectTimeoutMs ?? settings.readyTimeoutMs,
    keepaliveIntervalMs: endpoint.keepaliveIntervalMs,
    keepaliveCountMax: endpoint.keepaliveCountMax,
    forwardAgent: extra.forwardAgent && endpoint.forwardAgent !== false,
    forwardAgentSocket: endpoint.forwardAgent === false ? undefined : endpoint.forwardAgent,
    openSocket: extra.openSocket,
    onClose: extra.onClose,
    hostVerifier: extra.checking
      ? verify
      : (key) => {
          if (!warned.done) {
            warned.done = true;
            settings.onWarning?.(
              site,
              `host key checking is OFF for site ${site} (hostKeyChecking: false): accepted ${endpoint.knownHostsName}'s ${keyTypeLabel(keyTypeOf(key))} ${fingerprint(key)} unverified; anyone on the network path could impersonate it.`,
            );
          }
          return true;
        },
  });
}

type SshTransportOpenSocket = ConstructorParameters<typeof SshTransport>[0]['openSocket'];

/**
 * The SSH transport for one site: ssh config applied, every host key (the
 * site's and each jump host's) verified against known_hosts, authentication
 * as OpenSSH does it. Never throws: configuration problems surface when it
 * connects, as a ConnectionError for that site.
 *
 * @example
 * const transport = sshTransportFor(site, settings); // settings: one object per run
 * await transport.exec('uptime', {});
 */
export function sshTransportFor(site: ResolvedSite, settings: SshSettings = {}): SshTransport {
  const home = settings.home ?? homedir();
  let plan: ConnectionPlan;
  try {
    plan = planConnection(site, settings);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return new SshTransport({
      site: site.name,
      host: site.host,
      port: site.port ?? 22,
      username: site.user,
      auth: [],
      hostVerifier: () => 'not connected',
      openSocket: () => Promise.reject(new ConnectionError(`site ${site.name}: ${message}`, site.name, false, { cause: error })),
    });
  }
  const jumps: SshTransport[] = [];
  plan.jumps.forEach((endpoint, i) => {
    const previous = jumps[i - 1];
    const description = `jump host ${endpoint.user}@${endpoint.hostName}:${endpoint.port} (${i + 1} of ${plan.jumps.length}) for site ${site.name}`;
    jumps.push(
      transportFor(endpoint, site.name, settings, home, {
        description,
        checking: true,
        forwardAgent: false,
        openSocket: previous ? () => previous.forwardOut(endpoint.hostName, endpoint.port) : undefined,
      }),
    );
  });
  const last = jumps[jumps.length - 1];
  return transportFor(plan.target, site.name, settings, home, {
    description: `site ${site.name}`,
    checking: plan.hostKeyChecking,
    forwardAgent: true,
    openSocket: last ? () => last.forwardOut(plan.target.hostName, plan.target.port) : undefined,
    onClose: jumps.length > 0 ? async () => {
      for (const jump of [...jumps].reverse()) await jump.close().catch(() => undefined);
    } : undefined,
  });
}
