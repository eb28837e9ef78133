import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh } from '../../src/core/quote.ts';
import { Redactor, secret } from '../../src/core/secret.ts';
import { validateDeployfile } from '../../src/config/validate.ts';
import type { DeployfileConfig } from '../../src/config/define.ts';
import { execute } from '../../src/executor/executor.ts';
import { PolicyPrompter } from '../../src/prompts/prompter.ts';
import { sshRunSettings } from '../../src/ssh/run-settings.ts';
import { DryRunTransport } from '../../src/transports/dry-run.ts';
import { LocalTransport } from '../../src/transports/local.ts';
import type { ExecOptions, ExecResult, Transport } from '../../src/transports/transport.ts';
import { recorder, runDeployfile, sitesOn, startSshFixture, type SshFixture } from '../helpers/embedded-site.ts';

let fx: SshFixture;
beforeAll(async () => {
  fx = await startSshFixture(['alleged']);
});
afterAll(async () => {
  await fx?.close();
});

describe('secrets over SSH', () => {
  it('a secret passed with c.env reaches the remote command and is on no command line there, nor in any event', async () => {
    const value = "Pg-Pa55'word\nsecond line";
    const { outcome, events } = await runDeployfile(
      fx,
      {
        sites: sitesOn(fx),
        tasks: {
          t: async (c) => {
            // What `ps` would show of the command's shell, and what the command sees.
            await c.env({ PGPASSWORD: secret(value) }).run(sh`cat /proc/$$/cmdline > cmdline.txt; printenv PGPASSWORD > env.txt; echo "$PGPASSWORD"`);
          },
        },
      },
      ['t'],
    );
    expect(outcome.exitCode).toBe(0);
    const home = fx.homes.alleged as string;
    expect(readFileSync(join(home, 'env.txt'), 'utf8')).toBe(`${value}\n`);
    const cmdline = readFileSync(join(home, 'cmdline.txt'), 'utf8');
    expect(cmdline).toContain('__df_read PGPASSWORD');
    expect(cmdline).not.toContain('Pa55');
    const seen = JSON.stringify(events);
    expect(seen).not.toContain('Pa55');
    expect(seen).not.toContain('second line');
    expect(events.filter((e) => e.type === 'output').map((e) => (e as { chunk: string }).chunk).join('')).toBe('***\n');
  });

  it("output printed before the secret's first use is redacted: secret() registers a value when it is created", async () => {
    const token = secret('made-at-load-time-9c1d');
    const { of } = await runDeployfile(
      fx,
      {
        sites: sitesOn(fx),
        tasks: {
          t: async (c) => {
            await c.run('echo config has made-at-load-time-9c1d');
            await c.env({ TOKEN: token }).run('true');
          },
        },
      },
      ['t'],
    );
    expect(of('output').map((e) => e.chunk).join('')).toBe('config has ***\n');
  });

  it('DEPLOY_SUDO_PASSWORD, DEPLOY_SSH_PASSPHRASE and DEPLOY_SSH_KEY are redacted from the first output of a run, before anything uses them', async () => {
    const redactor = new Redactor();
    const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABgQC7\n-----END OPENSSH PRIVATE KEY-----\n';
    sshRunSettings({ redactor, onWarning: () => {}, env: { DEPLOY_SUDO_PASSWORD: 'sudo-Pw-4411', DEPLOY_SSH_PASSPHRASE: 'phrase-7702', DEPLOY_SSH_KEY: key } });
    const { of } = await runDeployfile(
      fx,
      { sites: sitesOn(fx), tasks: { t: async (c) => void (await c.run(sh`echo sudo-Pw-4411 phrase-7702; printf %s ${key}`)) } },
      ['t'],
      { redactor },
    );
    expect(of('output').map((e) => e.chunk).join('')).toBe('*** ***\n***');
    expect(JSON.stringify(of('command:start'))).not.toMatch(/sudo-Pw|phrase-77|AAAAB3/);
  });
});

/** A remote that records what it was sent, and where sudo asks for a password (the probe fails). */
class SudoServer implements Transport {
  readonly sent: { command: string; stdin: string | undefined }[] = [];
  constructor(readonly target = 'alleged@web1:22') {}
  async connect(): Promise<void> {}
  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    this.sent.push({ command, stdin: options.stdin });
    if (command.startsWith('sudo -k -n ')) {
      options.onStderr?.('sudo: a password is required\n');
      return { exitCode: 1, signal: null };
    }
    return { exitCode: 0, signal: null };
  }
  async put(): Promise<void> {}
  async get(): Promise<void> {}
  async close(): Promise<void> {}
}

async function runWith(remote: Transport, config: Omit<DeployfileConfig, 'sites'>, dryRun = false) {
  const deployfile = validateDeployfile({ sites: { alleged: { host: 'web1' } }, ...config }, 'deployfile.ts');
  const rec = recorder();
  const outcome = await execute({
    deployfile,
    tasks: Object.keys(config.tasks ?? {}),
    sites: deployfile.sites,
    bus: rec.bus,
    prompter: new PolicyPrompter({ yes: false, onFailure: 'abort' }),
    transportFor: () => remote,
    local: dryRun ? new DryRunTransport('local') : new LocalTransport(),
    dryRun,
    locks: false,
    sudoPassword: async () => 'sudo-pw-0042',
  });
  return { outcome, ...rec };
}

describe('c.sudo as the views show it', () => {
  it("the sudo probe (sudo -k -n true) is an internal check: no command, no output, no failure in the views", async () => {
    const remote = new SudoServer();
    const { outcome, events, of } = await runWith(remote, { tasks: { t: async (c) => void (await c.sudo('id -un')) } });
    expect(outcome.exitCode).toBe(0);
    expect(remote.sent.map((s) => s.command)).toEqual(['sudo -k -n true', `sudo -k -S -p '' -H -- sh -c 'id -un'`]);
    expect(of('command:start').map((e) => e.composed)).toEqual([`sudo -k -S -p '' -H -- sh -c 'id -un'`]);
    expect(of('command:end').every((e) => e.ok)).toBe(true);
    expect(JSON.stringify(events)).not.toContain('a password is required');
  });

  it('the password goes first on stdin, then secret env values, then the command’s own input', async () => {
    const remote = new SudoServer();
    await runWith(remote, { tasks: { t: async (c) => void (await c.env({ TOKEN: secret('tok-3141') }).sudo('cat', { stdin: 'own input\n' })) } });
    expect(remote.sent[1]?.stdin).toBe('sudo-pw-0042\n1\ntok-3141\nown input\n');
  });

  it('the dry run shows the sudo line a real run sends with a password, and says where it would differ', async () => {
    const remote = new DryRunTransport('alleged@web1:22');
    const { of } = await runWith(remote, { tasks: { t: async (c) => void (await c.sudo('id -un'), await c.sudo('true')) } }, true);
    expect(of('command:start').map((e) => e.composed)).toEqual([`sudo -k -S -p '' -H -- sh -c 'id -un'`, `sudo -k -S -p '' -H -- sh -c true`]);
    const notes = of('log').filter((e) => e.message.includes('dry run: c.sudo'));
    expect(notes).toHaveLength(1);
    expect(notes[0]?.message).toContain('a real run sends sudo -n instead');
  });

  it("a secret with ' interpolated into c.sudo cannot be rebuilt from --json's composed line or the result", async () => {
    const remote = new SudoServer();
    const value = "o'k";
    const { of } = await runWith(remote, { tasks: { t: async (c) => void (await c.sudo(sh`echo ${secret(value)}`)) } });
    expect(remote.sent[1]?.command).toBe(`sudo -k -S -p '' -H -- sh -c 'echo '\\''o'\\''\\'\\'''\\''k'\\'''`);
    expect(of('command:start').map((e) => [e.command, e.composed])).toEqual([[`echo ***`, `sudo -k -S -p '' -H -- sh -c 'echo ***'`]]);
  });
});
