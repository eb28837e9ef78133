/**
 * Logging in as OpenSSH does: a key from `DEPLOY_SSH_KEY`, the agent, then
 * the identity files, each loaded once per run (a passphrase is asked once
 * per key, and only when the agent did not get in).
 */
import { existsSync, readFileSync } from 'node:fs';
import ssh2 from 'ssh2';
import type { AuthMethod, LoadedKey } from '../transports/ssh.ts';
import type { Endpoint } from './plan.ts';
import { runStateOf, type SshRunState } from './run-state.ts';
import type { SshSettings } from './settings.ts';

const { utils } = ssh2;

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
  const state = runStateOf(settings);
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

function cached(state: SshRunState, id: string, load: () => Promise<LoadedKey | { skip: string }>): Promise<LoadedKey | { skip: string }> {
  let entry = state.keys.get(id);
  if (!entry) {
    entry = load();
    state.keys.set(id, entry);
  }
  return entry;
}
