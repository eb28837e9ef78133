import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROBE_SCRIPT, type ProbeOutcome, type ProbeSnapshot } from '../../tasks/uwsgi.ts';

// The script touchVassalIni sends to the server, run here for real by python3
// against stand-in vassals: processes listening on a unix socket, and a log
// file the test writes uWSGI's lines into.
const usable = spawnSync('python3', ['--version']).status === 0 && existsSync('/proc/net/unix');

const VASSAL_SERVER = String.raw`
import os, socket, sys
path, status = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
print('ready', flush=True)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(('HTTP/1.0 %s\r\nContent-Type: text/plain\r\n\r\nhello' % status).encode())
    c.close()
`;

let dir: string;
let ini: string;
let log: string;
let sock: string;
const children: ChildProcess[] = [];
let http: Server | undefined;

async function startVassal(status = '200 OK'): Promise<ChildProcess> {
  rmSync(sock, { force: true });
  const child = spawn('python3', ['-c', VASSAL_SERVER, sock, status], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`stand-in vassal exited with ${code}`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await gone;
}

function probe<T>(mode: 'snapshot' | 'wait', args: Record<string, string | number | undefined>): Promise<T> {
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

const later = (ms: number, fn: () => void) => new Promise<void>((resolve) => setTimeout(() => (fn(), resolve()), ms));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deployfile-probe-'));
  ini = join(dir, 'alleged.ini');
  log = join(dir, 'alleged.log');
  sock = join(dir, 'alleged.sock');
  writeFileSync(ini, `[uwsgi]\nsocket = ${sock}\nlogto = ${log}\n`);
  writeFileSync(log, '*** Starting uWSGI 2.0.21 (64bit) on [earlier] ***\nWSGI app 0 (mountpoint=\'\') ready in 1 seconds\n');
});

afterEach(async () => {
  for (const child of children.splice(0)) await stop(child);
  await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  http = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!usable)('the probe script touchVassalIni runs on the server', () => {
  it('snapshot records the log size and the processes holding the socket', async () => {
    const vassal = await startVassal();
    const snap = await probe<ProbeSnapshot>('snapshot', { ini, log, socket: sock });
    expect(snap.logSize).toBe(readFileSync(log).length);
    expect(snap.logError).toBeNull();
    expect(snap.pids).toEqual([vassal.pid]);
  });

  it("snapshot returns only once the clock's second is past the ini's mtime, so the touch that follows is seen", async () => {
    const now = Date.now() / 1000;
    utimesSync(ini, now, now);
    const snap = await probe<ProbeSnapshot>('snapshot', { ini });
    expect(Math.floor(snap.now)).toBeGreaterThan(Math.floor(snap.mtime));
  });

  it('succeeds once the log shows the restart and the socket answers', async () => {
    await startVassal();
    const snap = await probe<ProbeSnapshot>('snapshot', { ini, log, socket: sock });
    const waiting = probe<ProbeOutcome>('wait', { log, 'log-offset': snap.logSize ?? 0, socket: sock, protocol: 'uwsgi', pids: snap.pids.join(','), timeout: 10, interval: 0.1 });
    await later(300, () => appendFileSync(log, '*** Starting uWSGI 2.0.21 (64bit) on [now] ***\nspawned uWSGI worker 1 (pid: 1, cores: 1)\n'));
    const outcome = await waiting;
    expect(outcome).toMatchObject({ ok: true, reason: 'answered', evidence: 'uWSGI restarted (log)', probe: 'HTTP/1.0 200 OK' });
    expect(outcome.log).not.toContain('[earlier]');
  });

  it('does not take the old instance answering for the new one (no restart in the log)', async () => {
    await startVassal();
    const snap = await probe<ProbeSnapshot>('snapshot', { ini, log, socket: sock });
    const outcome = await probe<ProbeOutcome>('wait', { log, 'log-offset': snap.logSize ?? 0, socket: sock, pids: snap.pids.join(','), timeout: 1, interval: 0.1 });
    expect(outcome.ok).toBe(false);
    expect(outcome.reason).toMatch(/no sign of a restart/);
  });

  it('without a log, does not take the old process for the new one either', async () => {
    await startVassal();
    const snap = await probe<ProbeSnapshot>('snapshot', { ini, socket: sock });
    const outcome = await probe<ProbeOutcome>('wait', { socket: sock, pids: snap.pids.join(','), timeout: 1, interval: 0.1, grace: 10 });
    expect(outcome).toMatchObject({ ok: false, evidence: null });
  });

  it('without a log, a new process holding the socket is the evidence', async () => {
    const old = await startVassal();
    const snap = await probe<ProbeSnapshot>('snapshot', { ini, socket: sock });
    await stop(old);
    const fresh = await startVassal();
    const outcome = await probe<ProbeOutcome>('wait', { socket: sock, pids: snap.pids.join(','), timeout: 10, interval: 0.1, grace: 10 });
    expect(outcome).toMatchObject({ ok: true, evidence: `new uWSGI processes hold the socket (pids ${fresh.pid})`, probe: 'HTTP/1.0 200 OK' });
  });

  it('gives up early, with the log since the touch, when uWSGI could not load the app', async () => {
    await startVassal('500 Internal Server Error');
    const snap = await probe<ProbeSnapshot>('snapshot', { ini, log, socket: sock });
    const broken = readFileSync(join(import.meta.dirname, 'fixtures', 'uwsgi-import-error.txt'), 'utf8');
    const waiting = probe<ProbeOutcome>('wait', { log, 'log-offset': snap.logSize ?? 0, socket: sock, pids: snap.pids.join(','), timeout: 20, interval: 0.1 });
    await later(200, () => appendFileSync(log, broken));
    const outcome = await waiting;
    expect(outcome.ok).toBe(false);
    expect(outcome.reason).toBe('uWSGI could not load the app');
    expect(outcome.seconds).toBeLessThan(5);
    expect(outcome.log).toContain("ModuleNotFoundError: No module named 'missing_module_xyz'");
  });

  it('keeps checking while the new instance answers 500, and reports the last answer', async () => {
    await startVassal('500 Internal Server Error');
    const outcome = await probe<ProbeOutcome>('wait', { log, 'log-offset': 0, socket: sock, timeout: 1, interval: 0.1 });
    expect(outcome).toMatchObject({ ok: false, reason: 'the app did not answer in time', probe: 'HTTP/1.0 500 Internal Server Error' });
  });

  it('probes a health URL when one is given', async () => {
    http = createServer((_, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => http?.listen(0, '127.0.0.1', resolve));
    const address = http.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/health`;
    const outcome = await probe<ProbeOutcome>('wait', { log, 'log-offset': 0, url, timeout: 5, interval: 0.1 });
    expect(outcome).toMatchObject({ ok: true, probe: `HTTP 204 from ${url}` });
  });
});
