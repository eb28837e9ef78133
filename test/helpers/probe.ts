import { spawn } from 'node:child_process';
import { PROBE_SCRIPT } from '../../tasks/uwsgi.ts';

/**
 * Run touchVassalIni's probe script here, as the server would (`python3 -`
 * with the script on stdin), and parse the JSON line it ends with.
 *
 * @example const verdict = await runProbe<ProbeOutcome>('wait', { ini, socket, protocol: 'fastcgi', timeout: 20 });
 */
export function runProbe<T>(mode: 'snapshot' | 'wait', args: Record<string, string | number | undefined>): Promise<T> {
  const argv = ['-', mode, ...Object.entries(args).flatMap(([k, v]) => (v === undefined ? [] : [`--${k}`, String(v)]))];
  return new Promise((resolve, reject) => {
    const child = spawn('python3', argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() as string) as T);
      } catch {
        reject(new Error(`probe ${mode} exited ${code}: ${err || out}`));
      }
    });
    child.stdin.end(PROBE_SCRIPT);
  });
}
