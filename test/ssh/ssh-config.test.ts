import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResolvedSite } from '../../src/config/load.ts';
import { ConnectionError } from '../../src/core/errors.ts';
import { loadSshConfig, parseProxyJump, resolveSshHost } from '../../src/ssh/ssh-config.ts';
import { planConnection, sshTransportFor, type SshSettings } from '../../src/ssh/site-transport.ts';

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'deployfile-sshcfg-'));
  mkdirSync(join(home, '.ssh'), { mode: 0o700 });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

const env = { SSH_AUTH_SOCK: '/tmp/agent.sock', DEPLOY_KEYS: '/keys' };
function userConfig(text: string): void {
  writeFileSync(join(home, '.ssh', 'config'), text);
}
function resolve(host: string, options: { user?: string; port?: number } = {}) {
  return resolveSshHost(loadSshConfig({ home, systemConfigFile: null }), host, { home, env, ...options });
}
function site(overrides: Partial<ResolvedSite> = {}): ResolvedSite {
  return { name: 'alleged', host: 'web1', user: 'alleged', userIsDefault: true, port: undefined, identityFile: undefined, forwardAgent: undefined, vars: {}, ...overrides };
}
/** A fresh settings object per call: each is one "run". */
function settings(extra: SshSettings = {}): SshSettings {
  return { home, env, systemConfigFile: null, globalKnownHostsFiles: [], ...extra };
}

describe('reading ~/.ssh/config', () => {
  it('applies Host blocks in order, the first value winning, like ssh(1)', () => {
    userConfig(`
Host web1
  HostName 10.0.0.5
  Port 2222
  User deploy

Host web*
  Port 22
  User other
  IdentityFile ~/.ssh/web_key
  IdentitiesOnly yes
  ConnectTimeout 7
  ServerAliveInterval 30
  ServerAliveCountMax 5
  ForwardAgent yes

Host *
  IdentityFile %d/.ssh/all_%r_%h
`);
    const web1 = resolve('web1');
    expect(web1).toMatchObject({
      hostName: '10.0.0.5',
      port: 2222,
      user: 'deploy',
      identitiesOnly: true,
      connectTimeoutMs: 7000,
      serverAliveIntervalMs: 30000,
      serverAliveCountMax: 5,
      forwardAgent: true,
    });
    expect(web1.identityFiles).toEqual([join(home, '.ssh', 'web_key'), join(home, '.ssh', 'all_deploy_10.0.0.5')]);
    expect(resolve('db1')).toMatchObject({ hostName: 'db1', port: undefined, user: undefined, identitiesOnly: false, forwardAgent: undefined });
  });

  it('honours negated patterns and Match host', () => {
    userConfig(`
Host *.example.com !secret.example.com
  User ops
Match host db*
  Port 5022
`);
    expect(resolve('a.example.com').user).toBe('ops');
    expect(resolve('secret.example.com').user).toBeUndefined();
    expect(resolve('db7').port).toBe(5022);
  });

  it('lets the command line (the deployfile) user win, so Match user sees it', () => {
    userConfig(`
Host web1
  User fromconfig
Match user alleged
  Port 2200
`);
    expect(resolve('web1', { user: 'alleged' })).toMatchObject({ user: 'alleged', port: 2200 });
    expect(resolve('web1')).toMatchObject({ user: 'fromconfig', port: undefined });
  });

  it('follows Include, relative to ~/.ssh, with globs', () => {
    mkdirSync(join(home, '.ssh', 'config.d'));
    writeFileSync(join(home, '.ssh', 'config.d', '10-web.conf'), 'Host web1\n  HostName 10.1.1.1\n');
    writeFileSync(join(home, '.ssh', 'config.d', '20-db.conf'), 'Host db1\n  Port 6022\n');
    userConfig('Include config.d/*.conf\nHost *\n  User everyone\n');
    expect(resolve('web1')).toMatchObject({ hostName: '10.1.1.1', user: 'everyone' });
    expect(resolve('db1').port).toBe(6022);
  });

  it('reads -F FILE instead of ~/.ssh/config, and nothing with -F none', () => {
    userConfig('Host web1\n  Port 1111\n');
    const other = join(home, 'other_config');
    writeFileSync(other, 'Host web1\n  Port 2222\n');
    const viaF = loadSshConfig({ home, configFile: other, systemConfigFile: null });
    expect(resolveSshHost(viaF, 'web1', { home, env }).port).toBe(2222);
    const none = loadSshConfig({ home, configFile: 'none' });
    expect(resolveSshHost(none, 'web1', { home, env }).port).toBeUndefined();
    expect(() => loadSshConfig({ home, configFile: join(home, 'missing') })).toThrow(/does not exist/);
  });

  it('reads the user file before the system file (first value wins)', () => {
    userConfig('Host web1\n  Port 1111\n');
    const system = join(home, 'ssh_config');
    writeFileSync(system, 'Host *\n  Port 9999\n  HashKnownHosts yes\n');
    const loaded = loadSshConfig({ home, systemConfigFile: system });
    expect(resolveSshHost(loaded, 'web1', { home, env })).toMatchObject({ port: 1111, hashKnownHosts: true });
  });

  it('expands ${VAR} and IdentityAgent, UserKnownHostsFile, HostKeyAlias', () => {
    userConfig(`
Host web1
  IdentityFile \${DEPLOY_KEYS}/web1
  IdentityAgent none
  UserKnownHostsFile ~/.ssh/kh1 ~/.ssh/kh2
  HostKeyAlias web1-alias
`);
    expect(resolve('web1')).toMatchObject({
      identityFiles: ['/keys/web1'],
      identityAgent: 'none',
      userKnownHostsFiles: [join(home, '.ssh', 'kh1'), join(home, '.ssh', 'kh2')],
      hostKeyAlias: 'web1-alias',
    });
  });
});

describe('ProxyJump syntax', () => {
  it('parses [user@]host[:port], ssh:// URLs and IPv6 in brackets, in order', () => {
    expect(parseProxyJump('bastion')).toEqual([{ host: 'bastion', user: undefined, port: undefined }]);
    expect(parseProxyJump('deploy@bastion:2222, ssh://ops@inner:22,[::1]:2200')).toEqual([
      { host: 'bastion', user: 'deploy', port: 2222 },
      { host: 'inner', user: 'ops', port: 22 },
      { host: '::1', user: undefined, port: 2200 },
    ]);
    expect(parseProxyJump('none')).toEqual([]);
    expect(() => parseProxyJump('a,,b')).toThrow(/empty hop/);
    expect(() => parseProxyJump('a:99999')).toThrow(/not a port/);
  });
});

describe('planning a connection: the deployfile is the command line', () => {
  it('takes HostName, User and Port from ssh config when the deployfile leaves them out', () => {
    userConfig('Host web1\n  HostName 10.0.0.5\n  User deploy\n  Port 2222\n');
    const { target } = planConnection(site(), settings());
    expect(target).toMatchObject({ hostName: '10.0.0.5', user: 'deploy', port: 2222, knownHostsName: '[10.0.0.5]:2222' });
  });

  it('lets user, port, identityFile, forwardAgent and proxyJump in the deployfile win over ssh config', () => {
    userConfig('Host web1\n  User deploy\n  Port 2222\n  IdentityFile ~/.ssh/cfg_key\n  ForwardAgent no\n  ProxyJump cfgjump\n');
    const plan = planConnection(
      site({ user: 'alleged', userIsDefault: false, port: 22, identityFile: '~/.ssh/site_key', forwardAgent: true, proxyJump: 'none' }),
      settings(),
    );
    expect(plan.target).toMatchObject({ user: 'alleged', port: 22, forwardAgent: '/tmp/agent.sock' });
    expect(plan.target.identityFiles.map((f) => f.label)).toEqual(['~/.ssh/site_key', '~/.ssh/cfg_key']);
    expect(plan.jumps).toEqual([]);
  });

  it('falls back to the site name as user when neither says', () => {
    expect(planConnection(site(), settings()).target.user).toBe('alleged');
  });

  it("uses OpenSSH's default key names only when no IdentityFile is configured", () => {
    const { target } = planConnection(site(), settings());
    expect(target.identityFiles.map((f) => f.label)).toEqual(['~/.ssh/id_rsa', '~/.ssh/id_ecdsa', '~/.ssh/id_ecdsa_sk', '~/.ssh/id_ed25519', '~/.ssh/id_ed25519_sk', '~/.ssh/id_dsa']);
    expect(target.identityFiles.every((f) => !f.explicit)).toBe(true);
  });

  it('resolves each jump host through ssh config, and follows the first hop’s own ProxyJump', () => {
    userConfig(`
Host web1
  ProxyJump bastion,inner:2200
Host bastion
  HostName 192.0.2.10
  User jumper
  ProxyJump outer
Host outer
  Port 2022
`);
    const plan = planConnection(site(), settings());
    expect(plan.jumps.map((j) => `${j.user}@${j.hostName}:${j.port}`)).toEqual([
      `${userInfo().username}@outer:2022`,
      'jumper@192.0.2.10:22',
      `${userInfo().username}@inner:2200`,
    ]);
    expect(plan.target.hostName).toBe('web1');
  });

  it('checks host keys under HostKeyAlias when set, and under [host]:port otherwise', () => {
    userConfig('Host web1\n  HostKeyAlias web1-alias\n');
    expect(planConnection(site(), settings()).target.knownHostsName).toBe('web1-alias');
    expect(planConnection(site({ host: 'db1', port: 2200 }), settings()).target.knownHostsName).toBe('[db1]:2200');
  });

  it('reads known_hosts from UserKnownHostsFile and GlobalKnownHostsFile, recording into the first user file', () => {
    userConfig('Host web1\n  UserKnownHostsFile ~/.ssh/a ~/.ssh/b\n  GlobalKnownHostsFile /etc/x\n');
    const { target } = planConnection(site(), settings({ globalKnownHostsFiles: undefined }));
    expect(target.knownHostsFiles).toEqual([join(home, '.ssh', 'a'), join(home, '.ssh', 'b'), '/etc/x']);
    expect(target.recordFile).toBe(join(home, '.ssh', 'a'));
    const defaults = planConnection(site({ host: 'db1' }), settings({ globalKnownHostsFiles: undefined })).target;
    expect(defaults.knownHostsFiles).toEqual([
      join(home, '.ssh', 'known_hosts'),
      join(home, '.ssh', 'known_hosts2'),
      '/etc/ssh/ssh_known_hosts',
      '/etc/ssh/ssh_known_hosts2',
    ]);
  });

  it('uses no agent with IdentityAgent none, and warns that StrictHostKeyChecking no is ignored', () => {
    userConfig('Host web1\n  IdentityAgent none\n  StrictHostKeyChecking no\n');
    const warnings: string[] = [];
    const plan = planConnection(site(), settings({ onWarning: (_site, message) => warnings.push(message) }));
    expect(plan.target.agentSocket).toBeUndefined();
    expect(plan.hostKeyChecking).toBe(true);
    expect(warnings).toEqual([expect.stringMatching(/StrictHostKeyChecking no .* verifies host keys anyway/)]);
  });

  it('turns host key checking off only for a site that says hostKeyChecking: false', () => {
    expect(planConnection(site({ hostKeyChecking: false }), settings()).hostKeyChecking).toBe(false);
  });

  it('refuses ProxyCommand when it connects instead of silently connecting directly; sshTransportFor never throws', async () => {
    userConfig('Host web1\n  ProxyCommand nc %h %p\n');
    expect(() => planConnection(site(), settings())).toThrow(/ProxyCommand/);
    const transport = sshTransportFor(site(), settings());
    const error = await transport.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).message).toMatch(/^site alleged: ssh config sets ProxyCommand/);
    expect((error as ConnectionError).transient).toBe(false);
  });
});
