// The SSH layer against real OpenSSH on loopback: host keys, ProxyJump, a
// real ssh-agent, encrypted keys, sudo with a password and hostile values,
// all through the executor as a deploy runs them. Root only (it creates Unix
// users and sudoers entries); every test uses a temp HOME, never ~/.ssh.
// Run: npx vitest run --config vitest.e2e.config.ts test/ssh
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import type { SiteConfig, TaskFn } from '../../src/config/define.ts';
import { validateDeployfile } from '../../src/config/validate.ts';
import { EventBus, type DeployEvent } from '../../src/core/events.ts';
import { sh } from '../../src/core/quote.ts';
import type { Context } from '../../src/core/context.ts';
import { Redactor } from '../../src/core/secret.ts';
import { execute, type RunOutcome } from '../../src/executor/executor.ts';
import { PolicyPrompter } from '../../src/prompts/prompter.ts';
import { sudoPasswordSource } from '../../src/core/sudo-password.ts';
import { passphraseProvider, sshTransportFor, type SshSettings } from '../../src/ssh/site-transport.ts';
import { LocalTransport } from '../../src/transports/local.ts';
import * as lab from '../lab/lab.ts';

const USER = 'dfssh';
const SUDO_USER = 'dfsudo';
const TOOLS = ['/usr/sbin/sshd', '/usr/bin/ssh', '/usr/bin/ssh-keygen', '/usr/bin/ssh-agent', '/usr/bin/ssh-add', '/usr/bin/sudo', '/usr/sbin/chpasswd', '/usr/bin/git'];

function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root: it creates Unix users, sudoers entries and sshd instances';
  const missing = TOOLS.filter((t) => !fs.existsSync(t));
  if (missing.length) return `missing ${missing.join(', ')} (apt-get install openssh-server openssh-client sudo git)`;
  return undefined;
}
const skipReason = unavailable();

interface Run {
  outcome: RunOutcome;
  events: DeployEvent[];
  /** Every event as JSON lines: what --json would print. */
  json: string;
  stdout: (task?: string) => string;
}

describe.skipIf(skipReason !== undefined)(`ssh against OpenSSH${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let sshd: lab.Sshd;
  let jump: lab.Sshd;
  let impostor: lab.Sshd;
  let impostorKeys: string;
  let home: string;
  const started: lab.Sshd[] = [];

  beforeAll(async () => {
    key = await lab.createOperatorKey();
    await lab.createSiteUser(USER, { authorizedKeys: [key.publicKey] });
    await lab.createSiteUser(SUDO_USER, { authorizedKeys: [key.publicKey] });
    sshd = await lab.startSshd();
    // The jump host logs at DEBUG so the test can see the direct-tcpip channel it opened.
    jump = await lab.startSshd({ extraConfig: 'LogLevel DEBUG' });
    impostorKeys = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-impostor-'));
    impostor = await lab.startSshd({ hostKeyDir: impostorKeys });
    started.push(sshd, jump, impostor);
  });

  afterAll(async () => {
    for (const s of started) await s.stop();
    if (impostorKeys) fs.rmSync(impostorKeys, { recursive: true, force: true });
  });

  beforeEach(() => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-e2e-home-'));
    fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  const knownHosts = (): string => path.join(home, '.ssh', 'known_hosts');
  const trust = (...servers: lab.Sshd[]): void => fs.writeFileSync(knownHosts(), servers.flatMap((s) => s.knownHostsLines).join('\n') + '\n');
  const useOperatorKey = (name = 'id_ed25519'): void => fs.copyFileSync(key.privateKeyPath, path.join(home, '.ssh', name));
  function settings(extra: SshSettings = {}): SshSettings & { warnings: string[] } {
    const warnings: string[] = [];
    return { home, env: {}, systemConfigFile: null, globalKnownHostsFiles: [], agentSocket: null, onWarning: (_s, m) => warnings.push(m), warnings, ...extra };
  }

  async function run(
    site: SiteConfig & { name?: string },
    tasks: Record<string, TaskFn>,
    s: SshSettings,
    extra: { sudoPassword?: () => Promise<string | undefined>; redactor?: Redactor } = {},
  ): Promise<Run> {
    const { name = USER, ...siteConfig } = site;
    const deployfile = validateDeployfile({ sites: { [name]: siteConfig }, tasks }, path.join(home, 'deployfile.ts'));
    const events: DeployEvent[] = [];
    const bus = new EventBus(`e2e-${randomBytes(4).toString('hex')}`);
    bus.on((e) => events.push(e));
    const redactor = extra.redactor ?? s.redactor ?? new Redactor();
    // One settings object per run, as the CLI does: answers are shared through it.
    const runSettings: SshSettings = { ...s, redactor };
    const outcome = await execute({
      deployfile,
      tasks: Object.keys(tasks),
      sites: deployfile.sites,
      bus,
      prompter: new PolicyPrompter({ yes: false, onFailure: 'abort' }),
      local: new LocalTransport(),
      transportFor: (resolved) => sshTransportFor(resolved, runSettings),
      redactor,
      sudoPassword: extra.sudoPassword,
    });
    return {
      outcome,
      events,
      json: events.map((e) => JSON.stringify(e)).join('\n'),
      stdout: () =>
        events
          .filter((e): e is Extract<DeployEvent, { type: 'output' }> => e.type === 'output' && e.stream === 'stdout')
          .map((e) => e.chunk)
          .join(''),
    };
  }
  const siteError = (r: Run): string => r.outcome.summary[0]?.error ?? '';
  const at = (server: lab.Sshd): SiteConfig => ({ host: server.host, port: server.port });

  describe('host keys', () => {
    it('connects and runs as the site user when known_hosts has the key', async () => {
      trust(sshd);
      useOperatorKey();
      const r = await run(at(sshd), { who: async (c) => void (await c.run('whoami')) }, settings());
      expect(r.outcome.exitCode).toBe(0);
      expect(r.stdout()).toBe(`${USER}\n`);
    });

    it('refuses a changed host key loudly (file:line, both fingerprints), exit 1, and nothing ran', async () => {
      // known_hosts holds the real keys under the impostor's address.
      const marker = `/tmp/deployfile-ran-${randomBytes(6).toString('hex')}`;
      fs.writeFileSync(knownHosts(), ['# lab', ...sshd.knownHostsLines.map((l) => l.replace(`:${sshd.port} `, `:${impostor.port} `))].join('\n') + '\n');
      useOperatorKey();
      const s = settings({ acceptNewHostKeys: true, askHostKey: async () => true });
      const r = await run(at(impostor), { touch: async (c) => void (await c.run(sh`touch ${marker}`)) }, s);
      expect(r.outcome.exitCode).toBe(1);
      expect(r.outcome.summary[0]).toMatchObject({ site: USER, status: 'failed' });
      const message = siteError(r);
      expect(message).toContain(`HOST KEY FOR [127.0.0.1]:${impostor.port} HAS CHANGED`);
      const ed25519 = (keys: lab.HostKey[]) => keys.find((k) => k.type === 'ssh-ed25519')!.fingerprint;
      const impostorFp = (await lab.run('ssh-keygen', ['-lf', path.join(impostorKeys, 'ssh_host_ed25519_key.pub')])).stdout.split(' ')[1]!;
      expect(message).toContain(`ED25519 ${ed25519(sshd.hostKeys)}  (~/.ssh/known_hosts:2)`);
      expect(message).toContain(`server offered:   ED25519 ${impostorFp}`);
      expect(fs.existsSync(marker)).toBe(false);
      expect(r.events.some((e) => e.type === 'output')).toBe(false);
      // The impostor never saw a login: we hung up before authenticating.
      expect(fs.readFileSync(impostor.logPath, 'utf8')).not.toMatch(/Accepted publickey/);
      // Nothing was recorded over the old key.
      expect(fs.readFileSync(knownHosts(), 'utf8').trim().split('\n')).toHaveLength(4);
    });

    it('refuses an unknown host without a TTY', async () => {
      useOperatorKey();
      const r = await run(at(sshd), { who: async (c) => void (await c.run('whoami')) }, settings());
      expect(r.outcome.exitCode).toBe(1);
      expect(siteError(r)).toContain(`the host key of [127.0.0.1]:${sshd.port} is not known (ED25519 `);
      expect(fs.existsSync(knownHosts())).toBe(false);
    });

    it('accepts an unknown host with acceptNewHostKeys, writing an entry OpenSSH itself accepts', async () => {
      fs.rmSync(path.join(home, '.ssh'), { recursive: true });
      const keyDir = fs.mkdtempSync(path.join(home, 'keys-'));
      fs.copyFileSync(key.privateKeyPath, path.join(keyDir, 'id'));
      const s = settings({ acceptNewHostKeys: true });
      const r = await run({ ...at(sshd), identityFile: path.join(keyDir, 'id') }, { who: async (c) => void (await c.run('whoami')) }, s);
      expect(r.outcome.exitCode).toBe(0);
      expect(fs.statSync(path.join(home, '.ssh')).mode & 0o777).toBe(0o700);
      const written = fs.readFileSync(knownHosts(), 'utf8');
      expect(sshd.knownHostsLines).toContain(written.trim());
      expect(s.warnings).toEqual([expect.stringContaining(`Permanently added [127.0.0.1]:${sshd.port} (ED25519 `)]);
      // ssh(1) with StrictHostKeyChecking=yes trusts what we wrote.
      const { stdout } = await lab.run('ssh', [
        '-F', '/dev/null', '-i', key.privateKeyPath, '-p', String(sshd.port), '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes',
        '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts()}`, '-o', 'GlobalKnownHostsFile=/dev/null', `${USER}@127.0.0.1`, 'whoami',
      ]);
      expect(stdout.trim()).toBe(USER);
      // And the next run needs no flag.
      const again = await run({ ...at(sshd), identityFile: path.join(keyDir, 'id') }, { who: async (c) => void (await c.run('whoami')) }, settings());
      expect(again.outcome.exitCode).toBe(0);
    });

    it('accepts entries hashed by ssh-keygen -H', async () => {
      trust(sshd);
      await lab.run('ssh-keygen', ['-H', '-f', knownHosts()]);
      expect(fs.readFileSync(knownHosts(), 'utf8')).not.toContain('127.0.0.1');
      useOperatorKey();
      const r = await run(at(sshd), { who: async (c) => void (await c.run('whoami')) }, settings());
      expect(r.outcome.exitCode).toBe(0);
      expect(r.stdout()).toBe(`${USER}\n`);
    });

    it('records hashed entries when ssh config says HashKnownHosts yes, and ssh-keygen -F finds them', async () => {
      useOperatorKey();
      fs.writeFileSync(path.join(home, '.ssh', 'config'), 'Host *\n  HashKnownHosts yes\n');
      const r = await run(at(sshd), { who: async (c) => void (await c.run('whoami')) }, settings({ acceptNewHostKeys: true }));
      expect(r.outcome.exitCode).toBe(0);
      const { stdout } = await lab.run('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', knownHosts()]);
      expect(stdout).toMatch(/\|1\|/);
    });
  });

  describe('ProxyJump', () => {
    it('reaches the site through a jump host named in ~/.ssh/config, checking both host keys', async () => {
      trust(sshd, jump);
      useOperatorKey();
      fs.writeFileSync(
        path.join(home, '.ssh', 'config'),
        [
          'Host site-behind-jump',
          '  HostName 127.0.0.1',
          `  Port ${sshd.port}`,
          '  ProxyJump bastion',
          'Host bastion',
          '  HostName 127.0.0.1',
          `  Port ${jump.port}`,
          `  User ${USER}`,
          '',
        ].join('\n'),
      );
      const r = await run({ host: 'site-behind-jump' }, { who: async (c) => void (await c.run('whoami')) }, settings());
      expect(siteError(r)).toBe('');
      expect(r.stdout()).toBe(`${USER}\n`);
      // The jump sshd opened the forwarding channel to the site's sshd.
      const log = fs.readFileSync(jump.logPath, 'utf8');
      expect(log).toMatch(new RegExp(`direct_tcpip: originator .* target 127\\.0\\.0\\.1 port ${sshd.port}\\b`));
    });

    it("refuses when the jump host's key is unknown, naming the jump host", async () => {
      trust(sshd);
      useOperatorKey();
      const r = await run({ ...at(sshd), proxyJump: `${USER}@127.0.0.1:${jump.port}` }, { who: async (c) => void (await c.run('whoami')) }, settings());
      expect(r.outcome.exitCode).toBe(1);
      expect(siteError(r)).toMatch(new RegExp(`^jump host ${USER}@127\\.0\\.0\\.1:${jump.port} \\(1 of 1\\) for site ${USER}: the host key of \\[127\\.0\\.0\\.1\\]:${jump.port} is not known`));
    });
  });

  describe('authentication', () => {
    let agent: ChildProcess | undefined;
    let agentSock: string;

    beforeAll(async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-agent-'));
      agentSock = path.join(dir, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
      for (let i = 0; i < 100 && !fs.existsSync(agentSock); i++) await sleep(50);
      await lab.run('ssh-add', ['-q', key.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: agentSock } });
    });
    afterAll(() => {
      if (agent?.pid) agent.kill('SIGTERM');
      if (agentSock) fs.rmSync(path.dirname(agentSock), { recursive: true, force: true });
    });

    it('authenticates through a real ssh-agent, with no key files at all', async () => {
      trust(sshd);
      const r = await run(at(sshd), { who: async (c) => void (await c.run('whoami')) }, settings({ agentSocket: agentSock }));
      expect(siteError(r)).toBe('');
      expect(r.stdout()).toBe(`${USER}\n`);
    });

    it('forwards the agent only for a site with forwardAgent, so the server can use the operator key', async () => {
      trust(sshd);
      const fp = (await lab.run('ssh-keygen', ['-lf', key.publicKeyPath])).stdout.split(' ')[1]!;
      const list = { agent: async (c: Parameters<TaskFn>[0]) => void (await c.warnOnly().run('ssh-add -l')) };
      const on = await run({ ...at(sshd), forwardAgent: true }, list, settings({ agentSocket: agentSock }));
      expect(on.stdout()).toContain(fp);
      const off = await run(at(sshd), list, settings({ agentSocket: agentSock }));
      expect(off.stdout()).not.toContain(fp);
    });

    it('with IdentitiesOnly offers only the configured keys from the agent, and lists what was tried', async () => {
      trust(sshd);
      const other = path.join(home, '.ssh', 'other');
      await lab.run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      fs.writeFileSync(path.join(home, '.ssh', 'config'), `Host *\n  IdentitiesOnly yes\n  IdentityFile ${other}\n`);
      const r = await run(at(sshd), { who: async (c) => void (await c.run('whoami')) }, settings({ agentSocket: agentSock }));
      expect(r.outcome.exitCode).toBe(1);
      expect(siteError(r)).toMatch(/^authentication to dfssh@127\.0\.0\.1:\d+ failed; tried: agent: no keys matching IdentityFile \(IdentitiesOnly\); ~\/\.ssh\/other: rejected/);
    });

    it('uses an encrypted key made by ssh-keygen with its passphrase, asked once, and redacted', async () => {
      trust(sshd);
      const passphrase = `pass ${randomBytes(6).toString('hex')} phrase`;
      const keyPath = path.join(home, '.ssh', 'id_ecdsa');
      await lab.run('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', passphrase, '-C', 'encrypted', '-f', keyPath]);
      const pub = fs.readFileSync(`${keyPath}.pub`, 'utf8').trim();
      await lab.createSiteUser(USER, { authorizedKeys: [key.publicKey, pub] });
      let asked = 0;
      const redactor = new Redactor();
      const s = settings({ redactor, passphrase: async () => (asked++, passphrase) });
      const r = await run(
        at(sshd),
        {
          who: async (c) => void (await c.run('whoami')),
          // A task that (wrongly) prints the passphrase: the view must still not show it.
          leak: async (c) => void (await c.run(sh`echo ${passphrase}`)),
        },
        s,
        { redactor },
      );
      expect(siteError(r)).toBe('');
      expect(asked).toBe(1);
      expect(r.stdout()).toBe(`${USER}\n***\n`);
      expect(r.json).not.toContain(passphrase);

      // CI: the passphrase from DEPLOY_SSH_PASSPHRASE.
      const ci = await run(at(sshd), { who: async (c) => void (await c.run('whoami')) }, settings({ passphrase: passphraseProvider({ env: { DEPLOY_SSH_PASSPHRASE: passphrase } }) }));
      expect(siteError(ci)).toBe('');
      await lab.createSiteUser(USER, { authorizedKeys: [key.publicKey] });
    });
  });

  describe('sudo and hostile values', () => {
    const password = `pw'; echo "$(id)" \`x\` ${randomBytes(4).toString('hex')}`;
    const sudoers = `/etc/sudoers.d/deployfile-e2e-${SUDO_USER}`;
    const marker = `/tmp/deployfile-pwned-${randomBytes(6).toString('hex')}`;
    const hostile = [
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `; touch ${marker}`,
      `' ; touch ${marker} ; '`,
      `" ; touch ${marker} ; "`,
      `line one\nline two; touch ${marker}`,
      `| touch ${marker}`,
      `&& touch ${marker}`,
      `$HOME * ~ \\ %s`,
      '-n',
    ];

    beforeAll(async () => {
      await lab.run('chpasswd', [], { input: `${SUDO_USER}:${password}\n` });
      // A password is required: no NOPASSWD.
      fs.writeFileSync(sudoers, `${SUDO_USER} ALL=(ALL:ALL) ALL\n`, { mode: 0o440 });
      await lab.run('visudo', ['-c', '-f', sudoers]);
    });
    afterAll(async () => {
      fs.rmSync(sudoers, { force: true });
      await lab.run('usermod', ['-p', '*', SUDO_USER]);
      fs.rmSync(marker, { force: true });
    });

    it('runs c.sudo with the password on stdin, and the password appears in no event or output', async () => {
      trust(sshd);
      useOperatorKey();
      const redactor = new Redactor();
      const r = await run(
        { ...at(sshd), name: SUDO_USER },
        {
          root: async (c) => void (await c.sudo('id -un')),
          asUser: async (c) => void (await c.sudo('id -un', { user: USER })),
          // stdin after the password still reaches the command.
          stdin: async (c) => void (await c.sudo('cat', { stdin: 'piped\n' })),
        },
        settings(),
        { redactor, sudoPassword: sudoPasswordSource({ env: { DEPLOY_SUDO_PASSWORD: password }, redactor }) },
      );
      expect(siteError(r)).toBe('');
      expect(r.stdout()).toBe(`root\n${USER}\npiped\n`);
      expect(r.json).not.toContain(password);
      expect(JSON.stringify(r.outcome)).not.toContain(password);
    });

    it("never hands the sudo password to the command's stdin: not with a cached ticket, not under NOPASSWD", async () => {
      trust(sshd);
      useOperatorKey();
      const read = (redactor: Redactor) => ({
        // Twice: the first call leaves a cached ticket that must not make sudo skip reading the password.
        twice: async (c: Context) => void (await c.sudo('cat', { stdin: 'one\n' }), await c.sudo('cat', { stdin: 'two\n' })),
      });
      let redactor = new Redactor();
      let r = await run({ ...at(sshd), name: SUDO_USER }, read(redactor), settings(), { redactor, sudoPassword: sudoPasswordSource({ env: { DEPLOY_SUDO_PASSWORD: password }, redactor }) });
      expect(siteError(r)).toBe('');
      expect(r.stdout()).toBe('one\ntwo\n');
      const rule = fs.readFileSync(sudoers, 'utf8');
      fs.writeFileSync(sudoers, `${SUDO_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
      try {
        redactor = new Redactor();
        r = await run({ ...at(sshd), name: SUDO_USER }, read(redactor), settings(), { redactor, sudoPassword: sudoPasswordSource({ env: { DEPLOY_SUDO_PASSWORD: password }, redactor }) });
        expect(siteError(r)).toBe('');
        expect(r.stdout()).toBe('one\ntwo\n');
      } finally {
        fs.writeFileSync(sudoers, rule, { mode: 0o440 });
      }
    });

    it('fails without hanging on a wrong sudo password, and does not show it', async () => {
      trust(sshd);
      useOperatorKey();
      const wrong = `wrong-${randomBytes(6).toString('hex')}`;
      const redactor = new Redactor();
      const r = await run(
        { ...at(sshd), name: SUDO_USER },
        { root: async (c) => void (await c.sudo('id -un')) },
        settings(),
        { redactor, sudoPassword: sudoPasswordSource({ env: { DEPLOY_SUDO_PASSWORD: wrong }, redactor }) },
      );
      expect(r.outcome.exitCode).toBe(1);
      expect(r.json).not.toContain(wrong);
      expect(r.json).toMatch(/incorrect password|Sorry, try again/);
    });

    it('runs hostile interpolated values as literal arguments, through c.run, c.cd, c.env and c.sudo', async () => {
      trust(sshd);
      useOperatorKey();
      // The marker's slashes make this a few nested directories, all under base.
      const base = `/tmp/deployfile-e2e-${randomBytes(6).toString('hex')}`;
      const dir = `${base}/dir $(touch ${marker}) ; '"`;
      const redactor = new Redactor();
      const r = await run(
        { ...at(sshd), name: SUDO_USER },
        {
          args: async (c) => void (await c.run(sh`printf '%s\n' ${hostile}`)),
          cd: async (c) => {
            await c.run(sh`mkdir -p ${dir}`);
            await c.cd(dir).run('pwd');
          },
          env: async (c) => void (await c.env({ HOSTILE: hostile.join('|') }).run('printf "%s\\n" "$HOSTILE"')),
          sudo: async (c) => void (await c.sudo(sh`printf '%s\n' ${hostile}`)),
          cleanup: async (c) => void (await c.run(sh`rm -r -- ${base}`)),
        },
        settings(),
        { redactor, sudoPassword: sudoPasswordSource({ env: { DEPLOY_SUDO_PASSWORD: password }, redactor }) },
      );
      expect(siteError(r)).toBe('');
      const lines = hostile.join('\n') + '\n';
      expect(r.stdout()).toBe(`${lines}${dir}\n${hostile.join('|')}\n${lines}`);
      expect(fs.existsSync(marker)).toBe(false);
    });
  });
});
