import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult, Transport } from '../../src/transports/transport.ts';

/**
 * The contract every Transport keeps, as the runner above relies on it
 * (src/transports/transport.ts). One suite, run by one file per transport:
 * local.contract.test.ts, dry-run.contract.test.ts, embedded-ssh.contract.test.ts
 * and openssh.contract.e2e.test.ts (root only, real sshd).
 */

/** A transport to test, fresh for each test, and where on its target a test may write. */
export interface ContractSubject {
  transport: Transport;
  /** A directory on the target, writable, removed by `cleanup`. */
  remoteDir: string;
  cleanup(): Promise<void>;
}

/** Runs `command` and collects both streams. */
export async function execCollect(transport: Transport, command: string, options: Omit<ExecOptions, 'onStdout' | 'onStderr'> = {}): Promise<ExecResult & { stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const result = await transport.exec(command, { ...options, onStdout: (chunk) => (stdout += chunk), onStderr: (chunk) => (stderr += chunk) });
  return { ...result, stdout, stderr };
}

/** A local scratch directory for the operator's side of put and get. */
async function scratch(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'deployfile-contract-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Settles within `ms`, or the test fails saying what hung. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms}ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The contract of a transport that runs commands: local, the embedded SSH
 * server, OpenSSH.
 *
 * @example
 * transportContract('LocalTransport', async () => { const dir = await mkdtemp(...); return { transport: new LocalTransport(), remoteDir: dir, cleanup: () => rm(dir, { recursive: true }) }; });
 */
export function transportContract(name: string, open: () => Promise<ContractSubject>): void {
  describe(`${name} keeps the transport contract`, () => {
    let subject: ContractSubject | undefined;
    const start = async (): Promise<ContractSubject> => (subject = await open());
    afterEach(async () => {
      await subject?.transport.close();
      await subject?.cleanup();
      subject = undefined;
    });

    it('reports the exit code of the command, and never rejects for a non-zero one', async () => {
      const { transport } = await start();
      await transport.connect();
      expect(await execCollect(transport, 'true')).toMatchObject({ exitCode: 0, signal: null });
      expect(await execCollect(transport, 'exit 3')).toMatchObject({ exitCode: 3, signal: null });
      expect(await execCollect(transport, 'exit 255')).toMatchObject({ exitCode: 255 });
    });

    it('keeps stdout and stderr apart', async () => {
      const { transport } = await start();
      const result = await execCollect(transport, 'echo out; echo err >&2; echo more out');
      expect(result.stdout).toBe('out\nmore out\n');
      expect(result.stderr).toBe('err\n');
    });

    it('writes stdin to the command, then closes it; without stdin the command reads end of file', async () => {
      const { transport } = await start();
      expect((await execCollect(transport, 'cat', { stdin: 'line one\nline two\n' })).stdout).toBe('line one\nline two\n');
      expect((await execCollect(transport, 'wc -c', { stdin: 'x'.repeat(1_000_000) })).stdout.trim()).toBe('1000000');
      expect(await within(10_000, 'cat without stdin', execCollect(transport, 'cat'))).toMatchObject({ exitCode: 0, stdout: '' });
    });

    it('streams large output on both streams at once, every byte, without stalling', async () => {
      const { transport } = await start();
      const result = await within(30_000, 'large output', execCollect(transport, `(head -c 3000000 /dev/zero | tr '\\0' a) & (head -c 2000000 /dev/zero | tr '\\0' b >&2); wait`));
      expect(result.exitCode).toBe(0);
      expect(result.stdout.length).toBe(3_000_000);
      expect(result.stderr.length).toBe(2_000_000);
      expect(/^a+$/.test(result.stdout) && /^b+$/.test(result.stderr)).toBe(true);
    });

    it('reports a command killed by a signal as that signal, without SIG, and no exit code', async () => {
      const { transport } = await start();
      expect(await execCollect(transport, 'kill -TERM $$')).toMatchObject({ exitCode: null, signal: 'TERM' });
    });

    it('ends a command when its signal aborts (a timeout, Ctrl-C), and resolves with a failure', async () => {
      const { transport } = await start();
      const controller = new AbortController();
      const started = Date.now();
      setTimeout(() => controller.abort(), 300);
      const result = await within(15_000, 'an aborted sleep 60', execCollect(transport, 'echo started; sleep 60; echo never', { signal: controller.signal }));
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(result.stdout).toBe('started\n');
      expect(result.exitCode).not.toBe(0);
    });

    it('put then get gives the same bytes back', async () => {
      const { transport, remoteDir } = await start();
      const local = await scratch();
      try {
        const bytes = Buffer.concat([Buffer.from('line 1\n\u00e9t\u00e9\n'), Buffer.from([0, 1, 2, 255]), Buffer.alloc(300_000, 7)]);
        await writeFile(join(local.dir, 'sent'), bytes);
        await transport.put(join(local.dir, 'sent'), `${remoteDir}/put-get`);
        expect((await execCollect(transport, `wc -c < '${remoteDir}/put-get'`)).stdout.trim()).toBe(String(bytes.length));
        await transport.get(`${remoteDir}/put-get`, join(local.dir, 'received'));
        expect((await readFile(join(local.dir, 'received'))).equals(bytes)).toBe(true);
      } finally {
        await local.remove();
      }
    });

    it('connect and close are idempotent, and close ends a running command', async () => {
      const { transport } = await start();
      await transport.connect();
      await transport.connect();
      expect((await execCollect(transport, 'echo once')).stdout).toBe('once\n');
      const running = execCollect(transport, 'sleep 60').then(
        (result) => result,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      await transport.close();
      await transport.close();
      const ended = await within(15_000, 'a command running at close', running);
      if (!(ended instanceof Error)) expect((ended as ExecResult).exitCode).not.toBe(0);
    });

    it('refuses a line with a NUL byte, and runs none of it', async () => {
      const { transport, remoteDir } = await start();
      await expect(transport.exec(`touch '${remoteDir}/before-nul'\0; touch '${remoteDir}/after-nul'`, {})).rejects.toThrow(/NUL/);
      expect(await execCollect(transport, `test -e '${remoteDir}/before-nul' || test -e '${remoteDir}/after-nul'`)).toMatchObject({ exitCode: 1 });
    });
  });
}

/**
 * The dry-run printer's share of the contract: the same calls are accepted,
 * and nothing at all happens on either side. Every command "succeeds" with
 * no output (the runner shows the line; there is nothing to report), stdin
 * and signals have nothing to act on, put and get copy nothing. What a real
 * run would refuse outright (a NUL byte) it refuses too, so a dry run does
 * not promise a deploy that cannot happen.
 */
export function printerContract(name: string, open: (target: string) => Transport & { commands: readonly string[]; transfers: readonly string[] }): void {
  describe(`${name} keeps the printer's share of the transport contract`, () => {
    let local: { dir: string; remove(): Promise<void> } | undefined;
    afterEach(async () => {
      await local?.remove();
      local = undefined;
    });

    it('accepts every command, runs none, and reports success with no output', async () => {
      local = await scratch();
      const transport = open('alleged@web1:22');
      for (const command of ['true', 'exit 3', 'kill -TERM $$', 'echo out; echo err >&2', `touch '${local.dir}/ran'`]) {
        expect(await execCollect(transport, command, { stdin: 'ignored' })).toEqual({ exitCode: 0, signal: null, stdout: '', stderr: '' });
      }
      expect(existsSync(join(local.dir, 'ran'))).toBe(false);
      expect(transport.commands).toHaveLength(5);
    });

    it('returns at once, whatever the command would take, and an aborted signal changes nothing', async () => {
      const transport = open('alleged@web1:22');
      const controller = new AbortController();
      controller.abort();
      expect(await within(1000, 'a printed sleep', execCollect(transport, 'sleep 60', { signal: controller.signal }))).toMatchObject({ exitCode: 0 });
    });

    it('put and get copy nothing, on either side, and are recorded', async () => {
      local = await scratch();
      const transport = open('alleged@web1:22');
      await writeFile(join(local.dir, 'sent'), 'x');
      await transport.put(join(local.dir, 'sent'), join(local.dir, 'put'));
      await transport.get(join(local.dir, 'sent'), join(local.dir, 'got'));
      expect([existsSync(join(local.dir, 'put')), existsSync(join(local.dir, 'got'))]).toEqual([false, false]);
      expect(transport.transfers).toHaveLength(2);
    });

    it('connect and close are idempotent and touch nothing', async () => {
      const transport = open('alleged@web1:22');
      await transport.connect();
      await transport.connect();
      expect(await execCollect(transport, 'true')).toMatchObject({ exitCode: 0 });
      await transport.close();
      await transport.close();
    });

    it('refuses a line with a NUL byte, as a real run would', async () => {
      const transport = open('alleged@web1:22');
      await expect(transport.exec('echo a\0b', {})).rejects.toThrow(/NUL/);
      expect(transport.commands).toEqual([]);
    });
  });
}
