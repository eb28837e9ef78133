import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const DEPLOY_BIN = fileURLToPath(new URL('../../bin/deploy.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the built `deploy` binary as a user would, with stdin a pipe (no TTY).
 * It is killed after `timeoutMs`, so a run that waits for input fails the test
 * instead of hanging it.
 */
export function deploy(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; onStart?: (child: ChildProcess) => void } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DEPLOY_BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, NO_COLOR: '1', CI: '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    if (options.input !== undefined) child.stdin.end(options.input);
    // For tests that signal the process mid-run (Ctrl-C, a CI cancel).
    options.onStart?.(child);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`deploy ${args.join(' ')} did not finish within ${options.timeoutMs ?? 30_000}ms (waiting for input?)\n${stdout}\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
