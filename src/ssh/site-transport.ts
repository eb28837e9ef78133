import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ResolvedSite } from '../config/load.ts';
import { ConnectionError } from '../core/errors.ts';
import { SshTransport, type AuthMethod } from '../transports/ssh.ts';
import { checkHostKey, hostPattern } from './known-hosts.ts';

export interface SshSettings {
  /** Defaults to ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts. */
  knownHostsFiles?: string[];
  /** A private key given as text (e.g. from a CI secret), tried first. */
  privateKey?: string;
  readyTimeoutMs?: number;
  home?: string;
}

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

function expandHome(path: string, home: string): string {
  return path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : resolve(path);
}

/** The keys and agent to try, in OpenSSH's order: the site's key, the agent, default key files. */
export function authMethods(site: ResolvedSite, settings: SshSettings): AuthMethod[] {
  const home = settings.home ?? homedir();
  const methods: AuthMethod[] = [];
  if (settings.privateKey) methods.push({ type: 'key', privateKey: settings.privateKey, label: 'key from environment' });
  if (site.identityFile) {
    const path = expandHome(site.identityFile, home);
    if (!existsSync(path)) throw new ConnectionError(`site ${site.name}: identityFile ${site.identityFile} does not exist`, site.name);
    methods.push({ type: 'key', privateKey: readFileSync(path), label: site.identityFile });
  }
  if (process.env.SSH_AUTH_SOCK) methods.push({ type: 'agent', socket: process.env.SSH_AUTH_SOCK, label: 'agent' });
  if (!site.identityFile) {
    for (const name of DEFAULT_KEYS) {
      const path = join(home, '.ssh', name);
      if (existsSync(path)) methods.push({ type: 'key', privateKey: readFileSync(path), label: `~/.ssh/${name}` });
    }
  }
  return methods;
}

/** The SSH transport for one site, verifying its host key against known_hosts. */
export function sshTransportFor(site: ResolvedSite, settings: SshSettings = {}): SshTransport {
  const home = settings.home ?? homedir();
  const port = site.port ?? 22;
  const files = settings.knownHostsFiles ?? [join(home, '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
  return new SshTransport({
    site: site.name,
    host: site.host,
    port,
    username: site.user,
    auth: authMethods(site, settings),
    readyTimeoutMs: settings.readyTimeoutMs,
    forwardAgent: site.forwardAgent,
    hostVerifier: (key) => {
      const verdict = checkHostKey(files, site.host, port, key);
      if (verdict.status === 'match') return true;
      return verdict.status === 'changed'
          ? `HOST KEY FOR ${hostPattern(site.host, port)} HAS CHANGED: expected ${verdict.expected} (${verdict.file}:${verdict.line}), server offered ${verdict.actual}. If the server was really reinstalled, remove line ${verdict.line} of ${verdict.file}; otherwise someone may be intercepting the connection.`
          : `host key for ${hostPattern(site.host, port)} is not known (${verdict.actual}). Check it, then add it: ssh-keyscan -p ${port} ${site.host} >> ~/.ssh/known_hosts`;
    },
  });
}
