// The SSH layer against the in-process ssh2 server: host key decisions and
// authentication as the operator sees them, without root or sshd. The same
// behaviours against real OpenSSH are in ssh.e2e.test.ts.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utils } from 'ssh2';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedSite } from '../../src/config/load.ts';
import { ConnectionError } from '../../src/core/errors.ts';
import { Redactor } from '../../src/core/secret.ts';
import { generateKeyPair, startEmbeddedSshServer, type EmbeddedSshServer } from '../../demo/embedded-ssh/server.ts';
import { hashHostName } from '../../src/ssh/known-hosts.ts';
import { sudoPasswordSource } from '../../src/core/sudo-password.ts';
import { passphraseProvider, sshTransportFor, type HostKeyQuestion, type SshSettings } from '../../src/ssh/site-transport.ts';

const operator = generateKeyPair('operator');
let server: EmbeddedSshServer;
let serverHome: string;
let home: string;

beforeAll(async () => {
  serverHome = mkdtempSync(join(tmpdir(), 'deployfile-srv-'));
  server = await startEmbeddedSshServer({ home: serverHome, authorizedKeys: [operator.publicKey] });
});
afterAll(async () => {
  await server.close();
  rmSync(serverHome, { recursive: true, force: true });
});
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'deployfile-home-'));
  mkdirSync(join(home, '.ssh'), { mode: 0o700 });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const knownHosts = (): string => join(home, '.ssh', 'known_hosts');
function writeKey(name: string, text: string): string {
  const path = join(home, '.ssh', name);
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}
function site(overrides: Partial<ResolvedSite> = {}): ResolvedSite {
  return { name: 'alleged', host: server.host, user: 'alleged', port: server.port, identityFile: undefined, forwardAgent: undefined, vars: {}, ...overrides };
}
function settings(extra: SshSettings = {}): SshSettings & { warnings: string[] } {
  const warnings: string[] = [];
  return { home, env: {}, systemConfigFile: null, globalKnownHostsFiles: [], agentSocket: null, onWarning: (_s, m) => warnings.push(m), warnings, ...extra };
}
async function failure(promise: Promise<unknown>): Promise<ConnectionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectionError);
  return error as ConnectionError;
}
async function whoami(s: SshSettings, siteOverrides: Partial<ResolvedSite> = {}): Promise<string> {
  const transport = sshTransportFor(site(siteOverrides), s);
  let out = '';
  try {
    await transport.exec('echo ok', { onStdout: (c) => (out += c) });
  } finally {
    await transport.close();
  }
  return out.trim();
}

describe('host keys', () => {
  beforeEach(() => writeKey('id_ed25519', operator.privateKey));

  it('connects when known_hosts has the key', async () => {
    writeFileSync(knownHosts(), `${server.knownHostsLine}\n`);
    expect(await whoami(settings())).toBe('ok');
  });

  it('accepts a hashed known_hosts entry', async () => {
    const [, type, key] = server.knownHostsLine.split(' ');
    writeFileSync(knownHosts(), `${hashHostName(`[127.0.0.1]:${server.port}`)} ${type} ${key}\n`);
    expect(await whoami(settings())).toBe('ok');
  });

  it('refuses an unknown host without a TTY, says how to proceed, and runs nothing', async () => {
    const before = server.stats.commands.length;
    const error = await failure(whoami(settings()));
    expect(error.message).toContain(`site alleged: the host key of [127.0.0.1]:${server.port} is not known (ED25519 ${server.hostKeyFingerprint})`);
    expect(error.message).toContain('--accept-new-host-keys');
    expect(error.transient).toBe(false);
    expect(server.stats.commands.length).toBe(before);
  });

  it('with acceptNewHostKeys records the key in ~/.ssh/known_hosts (creating ~/.ssh) and says so', async () => {
    rmSync(join(home, '.ssh'), { recursive: true });
    mkdirSync(join(home, '.ssh'), { mode: 0o700 });
    writeKey('id_ed25519', operator.privateKey);
    const s = settings({ acceptNewHostKeys: true });
    expect(await whoami(s)).toBe('ok');
    expect(readFileSync(knownHosts(), 'utf8')).toBe(`${server.knownHostsLine}\n`);
    expect(s.warnings).toEqual([`Permanently added [127.0.0.1]:${server.port} (ED25519 ${server.hostKeyFingerprint}) to ~/.ssh/known_hosts:1 (--accept-new-host-keys)`]);
    // Next run: known, nothing to add.
    const next = settings();
    expect(await whoami(next)).toBe('ok');
    expect(next.warnings).toEqual([]);
  });

  it('hashes the recorded name when ssh config says HashKnownHosts yes', async () => {
    writeFileSync(join(home, '.ssh', 'config'), 'Host *\n  HashKnownHosts yes\n');
    expect(await whoami(settings({ acceptNewHostKeys: true }))).toBe('ok');
    const text = readFileSync(knownHosts(), 'utf8');
    expect(text).toMatch(/^\|1\|/);
    expect(text).not.toContain('127.0.0.1');
    expect(await whoami(settings())).toBe('ok');
  });

  it('on a TTY asks once with the fingerprint, even for sites connecting at once, and records a yes', async () => {
    const questions: HostKeyQuestion[] = [];
    const s = settings({
      askHostKey: async (q) => {
        questions.push(q);
        await new Promise((r) => setTimeout(r, 50));
        return true;
      },
    });
    const outs = await Promise.all([whoami(s), whoami(s, { name: 'bravo', user: 'bravo' }), whoami(s, { name: 'charlie', user: 'charlie' })]);
    expect(outs).toEqual(['ok', 'ok', 'ok']);
    expect(questions).toHaveLength(1);
    expect(questions[0]).toMatchObject({ host: `[127.0.0.1]:${server.port}`, fingerprint: server.hostKeyFingerprint, keyType: 'ssh-ed25519' });
    expect(questions[0]!.text).toContain(`ED25519 key fingerprint is ${server.hostKeyFingerprint}.`);
    expect(questions[0]!.text).toMatch(/continue connecting \(yes\/no\)\?$/);
    expect(readFileSync(knownHosts(), 'utf8').trim().split('\n')).toHaveLength(1);
  });

  it('refuses when the answer is no, records nothing, and does not ask again for other sites on that server', async () => {
    let asked = 0;
    const s = settings({ askHostKey: async () => (asked++, false) });
    const error = await failure(whoami(s));
    expect(error.message).toMatch(/not accepted: you answered no/);
    const other = await failure(whoami(s, { name: 'bravo', user: 'bravo' }));
    expect(other.message).toMatch(/not accepted: you answered no/);
    expect(asked).toBe(1);
    expect(() => readFileSync(knownHosts())).toThrow();
  });

  it('does not count the time spent answering against the connect timeout', async () => {
    const s = settings({ readyTimeoutMs: 300, askHostKey: () => new Promise((r) => setTimeout(() => r(true), 600)) });
    expect(await whoami(s)).toBe('ok');
  });

  it('refuses a changed key loudly, never asks, never retries, and runs nothing', async () => {
    const impostor = await startEmbeddedSshServer({ home: serverHome, authorizedKeys: [operator.publicKey] });
    try {
      // known_hosts says the real server's key lives where the impostor now answers.
      const [, type, key] = server.knownHostsLine.split(' ');
      writeFileSync(knownHosts(), `# team servers\n[127.0.0.1]:${impostor.port} ${type} ${key}\n`);
      let asked = 0;
      const s = settings({ acceptNewHostKeys: true, askHostKey: async () => (asked++, true) });
      const transport = sshTransportFor(site({ port: impostor.port }), s);
      const error = await failure(transport.exec('touch should-not-exist', {}));
      expect(error.message).toContain(`site alleged: HOST KEY FOR [127.0.0.1]:${impostor.port} HAS CHANGED`);
      expect(error.message).toContain(`ED25519 ${server.hostKeyFingerprint}  (~/.ssh/known_hosts:2)`);
      expect(error.message).toContain(`server offered:   ED25519 ${impostor.hostKeyFingerprint}`);
      expect(error.message).toContain(`ssh-keygen -R '[127.0.0.1]:${impostor.port}' -f ${knownHosts()}`);
      expect(error.transient).toBe(false);
      // A second command on the same transport fails the same way without a new connection.
      const again = await failure(transport.exec('true', {}));
      expect(again).toBe(error);
      expect(impostor.stats.connections).toBe(1);
      expect(impostor.stats.commands).toEqual([]);
      expect(asked).toBe(0);
      expect(readFileSync(knownHosts(), 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
      await transport.close();
    } finally {
      await impostor.close();
    }
  });

  it('refuses a @revoked key', async () => {
    const [, type, key] = server.knownHostsLine.split(' ');
    writeFileSync(knownHosts(), `${server.knownHostsLine}\n@revoked * ${type} ${key}\n`);
    const error = await failure(whoami(settings({ acceptNewHostKeys: true })));
    expect(error.message).toContain('is marked @revoked in ~/.ssh/known_hosts:2');
  });

  it('refuses a host covered only by @cert-authority, explaining that ssh2 cannot check certificates', async () => {
    const ca = utils.parseKey(generateKeyPair('ca').publicKey) as { getPublicSSH(): Buffer };
    writeFileSync(knownHosts(), `@cert-authority [127.0.0.1]:* ssh-ed25519 ${ca.getPublicSSH().toString('base64')}\n`);
    const error = await failure(whoami(settings({ acceptNewHostKeys: true, askHostKey: async () => true })));
    expect(error.message).toMatch(/trusted through a @cert-authority line \(~\/\.ssh\/known_hosts:1\), but .*ssh2.* cannot check host certificates/);
  });

  it('skips verification only for a site with hostKeyChecking: false, and warns every run', async () => {
    for (let run = 0; run < 2; run++) {
      const s = settings();
      expect(await whoami(s, { hostKeyChecking: false })).toBe('ok');
      expect(s.warnings).toEqual([expect.stringMatching(new RegExp(`^host key checking is OFF for site alleged \\(hostKeyChecking: false\\): accepted .*${server.hostKeyFingerprint.replace(/[+/]/g, '.')}`))]);
    }
    expect(() => readFileSync(knownHosts())).toThrow();
  });
});

describe('authentication', () => {
  beforeEach(() => writeFileSync(knownHosts(), `${server.knownHostsLine}\n`));

  it('lists what was tried when every key is refused', async () => {
    writeKey('id_ed25519', generateKeyPair('stranger').privateKey);
    writeKey('id_rsa', 'not a key\n');
    const error = await failure(whoami(settings({ agentSocket: join(home, 'no-agent.sock') })));
    expect(error.message).toMatch(/^authentication to alleged@127\.0\.0\.1:\d+ failed; tried: /);
    expect(error.message).toContain('agent: not usable');
    expect(error.message).toContain('~/.ssh/id_rsa: unusable');
    expect(error.message).toContain('~/.ssh/id_ed25519: rejected');
    expect(error.transient).toBe(false);
  });

  it('says so when there is nothing to try', async () => {
    const error = await failure(whoami(settings()));
    expect(error.message).toMatch(/no keys or agent available/);
  });

  it('reports a missing identityFile from the deployfile and still tries the others', async () => {
    const missing = await failure(whoami(settings(), { identityFile: '~/.ssh/missing_key' }));
    expect(missing.message).toContain('tried: ~/.ssh/missing_key: no such file');
    writeFileSync(join(home, '.ssh', 'config'), 'Host *\n  IdentityFile ~/.ssh/id_ed25519\n');
    writeKey('id_ed25519', operator.privateKey);
    expect(await whoami(settings(), { identityFile: '~/.ssh/missing_key' })).toBe('ok');
  });

  it('uses DEPLOY_SSH_KEY (settings.privateKey) first', async () => {
    expect(await whoami(settings({ privateKey: operator.privateKey }))).toBe('ok');
  });

  it('asks an encrypted key’s passphrase once per run, for all sites, and redacts it', async () => {
    const encrypted = utils.generateKeyPairSync('ed25519', { passphrase: 'correct horse', cipher: 'aes256-ctr', rounds: 4 });
    const server2 = await startEmbeddedSshServer({ home: serverHome, authorizedKeys: [encrypted.public] });
    try {
      writeFileSync(knownHosts(), `${server2.knownHostsLine}\n`);
      writeKey('deploy_key', encrypted.private);
      const asked: string[] = [];
      const redactor = new Redactor();
      const s = settings({
        redactor,
        passphrase: async (r) => {
          asked.push(`${r.label}#${r.attempt}`);
          return r.attempt === 1 ? 'wrong guess' : 'correct horse';
        },
      });
      const sites = ['alleged', 'bravo'].map((name) => site({ name, user: name, port: server2.port, identityFile: '~/.ssh/deploy_key' }));
      for (const each of sites) {
        const transport = sshTransportFor(each, s);
        await transport.exec('true', {});
        await transport.close();
      }
      expect(asked).toEqual(['~/.ssh/deploy_key#1', '~/.ssh/deploy_key#2']);
      expect(redactor.redact('pass: correct horse / wrong guess')).toBe('pass: *** / ***');
    } finally {
      await server2.close();
    }
  });

  it('in CI takes the passphrase from DEPLOY_SSH_PASSPHRASE, once, and reports a wrong one', async () => {
    const encrypted = utils.generateKeyPairSync('ed25519', { passphrase: 'ci secret', cipher: 'aes256-ctr', rounds: 4 });
    writeKey('id_ed25519', encrypted.private);
    const good = passphraseProvider({ env: { DEPLOY_SSH_PASSPHRASE: 'ci secret' } });
    expect(await good({ site: 'a', keyPath: 'k', label: 'k', attempt: 1 })).toBe('ci secret');
    expect(await good({ site: 'a', keyPath: 'k', label: 'k', attempt: 2 })).toBeUndefined();
    const error = await failure(whoami(settings({ passphrase: passphraseProvider({ env: { DEPLOY_SSH_PASSPHRASE: 'nope' } }) })));
    expect(error.message).toContain('~/.ssh/id_ed25519: wrong passphrase');
    const none = await failure(whoami(settings()));
    expect(none.message).toContain('~/.ssh/id_ed25519: encrypted, and no passphrase available');
  });
});

describe('sudo password source', () => {
  it('takes DEPLOY_SUDO_PASSWORD, or asks once per run, and adds it to the redactor', async () => {
    const redactor = new Redactor();
    const fromEnv = sudoPasswordSource({ env: { DEPLOY_SUDO_PASSWORD: 's3cret!' }, redactor });
    expect(await fromEnv()).toBe('s3cret!');
    expect(redactor.redact('echo s3cret!')).toBe('echo ***');
    let asks = 0;
    const asked = sudoPasswordSource({ env: {}, ask: async () => (asks++, 'typed pw'), redactor });
    expect(await Promise.all([asked(), asked()])).toEqual(['typed pw', 'typed pw']);
    expect(asks).toBe(1);
    expect(await sudoPasswordSource({ env: {} })()).toBeUndefined();
  });
});

describe('settings for a deploy run', () => {
  it('never answers host key questions by policy, asks hidden questions on a TTY, and reads CI secrets from the environment', async () => {
    const { sshRunSettings } = await import('../../src/ssh/run-settings.ts');
    const redactor = new Redactor();
    const asked: string[] = [];
    const { ssh, sudoPassword } = sshRunSettings({
      configFile: '/x/config',
      acceptNewHostKeys: true,
      redactor,
      onWarning: () => undefined,
      env: { DEPLOY_SSH_KEY: 'KEYTEXT', SSH_AUTH_SOCK: '/agent' },
      asker: {
        confirm: async (_site, message, def) => (asked.push(message), def),
        secret: async (message) => (asked.push(message), 'typed'),
      },
    });
    expect(ssh).toMatchObject({ configFile: '/x/config', acceptNewHostKeys: true, privateKey: 'KEYTEXT', redactor });
    expect(await ssh.askHostKey!({ site: 'a', host: 'h', keyType: 'ssh-ed25519', fingerprint: 'SHA256:x', text: 'The authenticity...' })).toBe(false);
    expect(await ssh.passphrase!({ site: 'a', keyPath: '/k', label: '~/.ssh/k', attempt: 1 })).toBe('typed');
    expect(await sudoPassword()).toBe('typed');
    expect(asked).toEqual(['The authenticity...', "Enter passphrase for key '~/.ssh/k':", 'sudo password on the servers (Enter if none is needed):']);
    expect(redactor.redact('typed')).toBe('***');
    const ci = sshRunSettings({ redactor, onWarning: () => undefined, env: { DEPLOY_SUDO_PASSWORD: 'from-env' } });
    expect(ci.ssh.askHostKey).toBeUndefined();
    expect(await ci.sudoPassword()).toBe('from-env');
  });
});

describe('sessions', () => {
  beforeEach(() => {
    writeKey('id_ed25519', operator.privateKey);
    writeFileSync(knownHosts(), `${server.knownHostsLine}\n`);
  });

  async function sessionsFor(overrides: Partial<ResolvedSite>): Promise<number> {
    const transport = sshTransportFor(site(overrides), settings());
    const before = server.stats.sessions;
    try {
      for (let i = 0; i < 5; i++) await transport.exec('true', {});
    } finally {
      await transport.close();
    }
    return server.stats.sessions - before;
  }

  it("runs a site's commands in one shared shell, or a session each where the site says sharedShell: false", async () => {
    expect(await sessionsFor({})).toBe(1);
    expect(await sessionsFor({ sharedShell: false })).toBe(5);
  });
});
