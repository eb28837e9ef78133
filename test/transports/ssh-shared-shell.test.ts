// The shared shell as the SSH transport uses it, against the embedded SSH
// server (a real ssh2 server running /bin/sh): what a user would notice is
// one session for a run of commands instead of one each, and nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHELL_STDIN_LIMIT } from '../../src/transports/shared-shell.ts';
import { SshTransport } from '../../src/transports/ssh.ts';
import { startSshFixture, type SshFixture } from '../helpers/embedded-site.ts';
import { execCollect } from './contract.ts';

let fx: SshFixture;
beforeAll(async () => {
  fx = await startSshFixture(['alleged']);
});
afterAll(async () => {
  for (const transport of fx?.transports ?? []) await transport.close();
  await fx?.close();
});

function transport(sharedShell?: boolean): SshTransport {
  const expected = fx.server.hostPublicKey.split(' ')[1];
  const made = new SshTransport({
    site: 'alleged',
    host: fx.server.host,
    port: fx.server.port,
    username: 'alleged',
    auth: [{ type: 'key', privateKey: fx.privateKey, label: 'test key' }],
    hostVerifier: (key) => key.toString('base64') === expected || 'host key mismatch',
    sharedShell,
  });
  fx.transports.push(made);
  return made;
}

describe('SshTransport runs commands that need no stdin in one shared shell', () => {
  it('twenty commands take one session, each with its own output and status', async () => {
    const ssh = transport();
    const before = fx.server.stats.sessions;
    for (let i = 0; i < 20; i++) {
      expect(await execCollect(ssh, `echo ${i}; echo e${i} >&2; exit ${i % 3}`)).toEqual({ exitCode: i % 3, signal: null, stdout: `${i}\n`, stderr: `e${i}\n` });
    }
    expect(fx.server.stats.sessions - before).toBe(1);
  });

  it('small stdin goes in the shell; a command with more, or with a NUL byte, or one asked for while the shell is busy, gets a session of its own', async () => {
    const ssh = transport();
    await execCollect(ssh, 'true');
    const before = fx.server.stats.sessions;
    expect((await execCollect(ssh, 'cat', { stdin: 'secret\n' })).stdout).toBe('secret\n');
    expect(fx.server.stats.sessions - before).toBe(0);
    expect((await execCollect(ssh, 'wc -c', { stdin: 'x'.repeat(SHELL_STDIN_LIMIT + 1) })).stdout.trim()).toBe(String(SHELL_STDIN_LIMIT + 1));
    // A NUL byte cannot be in a shell line; a session's stdin carries it.
    expect((await execCollect(ssh, 'od -An -c', { stdin: 'a\0b' })).stdout.replace(/\s+/g, ' ').trim()).toBe('a \\0 b');
    const [slow, quick] = await Promise.all([execCollect(ssh, 'sleep 0.3; echo slow'), execCollect(ssh, 'echo quick')]);
    expect([slow.stdout, quick.stdout]).toEqual(['slow\n', 'quick\n']);
    expect(fx.server.stats.sessions - before).toBe(3);
  });

  it('after a timeout ends the shell, the next command starts a new one', async () => {
    const ssh = transport();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const stopped = await execCollect(ssh, 'sleep 30', { signal: controller.signal });
    expect(stopped.exitCode).not.toBe(0);
    const before = fx.server.stats.sessions;
    expect((await execCollect(ssh, 'echo again')).stdout).toBe('again\n');
    expect(fx.server.stats.sessions - before).toBe(1);
  });

  it('a command already aborted when it comes does not turn the shared shell off for the commands after it', async () => {
    const ssh = transport();
    await ssh.connect();
    const controller = new AbortController();
    controller.abort();
    await execCollect(ssh, 'true', { signal: controller.signal });
    const before = fx.server.stats.sessions;
    for (let i = 0; i < 3; i++) expect((await execCollect(ssh, `echo ${i}`)).stdout).toBe(`${i}\n`);
    expect(fx.server.stats.sessions - before).toBeLessThanOrEqual(1);
  });

  it('sharedShell: false gives every command a session, as before', async () => {
    const ssh = transport(false);
    const before = fx.server.stats.sessions;
    for (let i = 0; i < 3; i++) await execCollect(ssh, 'true');
    expect(fx.server.stats.sessions - before).toBe(3);
  });
});
