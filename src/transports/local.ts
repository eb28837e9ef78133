import { spawn } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { OPERATOR_SECRET_VARS } from '../core/secret.ts';
import type { ExecOptions, ExecResult, Transport } from './transport.ts';

/**
 * The environment `c.local` children get: the operator's, without the
 * tool's own secrets (`DEPLOY_SSH_KEY`, `DEPLOY_SSH_PASSPHRASE`,
 * `DEPLOY_SUDO_PASSWORD`), which are for this process only: a test suite or
 * build script run by `c.local` has no business reading the deploy key.
 *
 * @example
 * childEnv({ PATH: '/bin', DEPLOY_SSH_KEY: '-----BEGIN ...' }) // => { PATH: '/bin' }
 */
export function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of OPERATOR_SECRET_VARS) delete out[name];
  return out;
}

/** Runs commands on the operator's machine with `/bin/sh -c`, as `c.local` does (without the tool's secrets in their environment). */
export class LocalTransport implements Transport {
  readonly target = 'local';
  private readonly running = new Set<ReturnType<typeof spawn>>();

  constructor(private readonly options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {}

  async connect(): Promise<void> {}

  exec(command: string, options: ExecOptions): Promise<ExecResult> {
    // Node would refuse it too (ERR_INVALID_ARG_VALUE), but say it as every transport does.
    if (command.includes('\0')) return Promise.reject(new TypeError(`refusing to run a command containing a NUL byte (character ${command.indexOf('\0') + 1}): no shell can take one; nothing was run`));
    return new Promise((resolve, reject) => {
      // A process group of its own, so ending a command ends what it started too.
      const child = spawn('/bin/sh', ['-c', command], {
        cwd: this.options.cwd,
        // Read at each command, so what the operator's process.env holds then is what children get, minus the secrets.
        env: childEnv(this.options.env ?? process.env),
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      this.running.add(child);
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => options.onStdout?.(chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => options.onStderr?.(chunk));
      child.stdin.on('error', () => {}); // the command may exit without reading stdin
      child.stdin.end(options.stdin ?? '');
      const kill = (): void => killGroup(child.pid, 'SIGTERM');
      options.signal?.addEventListener('abort', kill, { once: true });
      if (options.signal?.aborted) kill();
      child.on('error', (error) => {
        this.running.delete(child);
        reject(error);
      });
      child.on('close', (code, signal) => {
        this.running.delete(child);
        options.signal?.removeEventListener('abort', kill);
        resolve({ exitCode: code, signal: signal ? signal.replace(/^SIG/, '') : null });
      });
    });
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    await mkdir(dirname(remotePath), { recursive: true });
    await copyFile(localPath, remotePath);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    await mkdir(dirname(localPath), { recursive: true });
    await copyFile(remotePath, localPath);
  }

  async close(): Promise<void> {
    for (const child of this.running) killGroup(child.pid, 'SIGTERM');
  }
}

/**
 * Signals the command's whole process group. Hand-written: execa is not
 * installed, and its kill (with forceKillAfterDelay for a KILL later)
 * signals only the direct child, the `sh -c`, not the pipeline or the
 * background jobs the line started; a group kill is this one call anyway.
 */
function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
