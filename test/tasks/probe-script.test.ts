import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ProbeOutcome, type ProbeSnapshot, type VassalLoad } from '../../tasks/uwsgi.ts';
import { runProbe } from '../helpers/probe.ts';

// The script touchVassalIni sends to the server, run here for real by python3
// against stand-in vassals: a "uwsgi" master (argv[0] says so, as a tyrant
// vassal's "uwsgi-core --ini NAME.ini" does) whose two forked workers answer
// on a unix socket, and which on SIGHUP replaces its workers and keeps its
// pid, as a graceful uWSGI reload does; and a log file the test writes
// uWSGI's lines into.
const usable = spawnSync('python3', ['--version']).status === 0 && existsSync('/proc/net/unix');
/** The interpreter itself: a pyenv shim would exec it by its own name, losing the stand-in's "uwsgi-core". */
const PYTHON = usable ? spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout.trim() : 'python3';
const DJANGO_PYTHON = '/usr/bin/python3';
const hasDjango = existsSync(DJANGO_PYTHON) && spawnSync(DJANGO_PYTHON, ['-c', 'import django']).status === 0;

const VASSAL_SERVER = String.raw`
import ctypes, os, signal, socket, sys, time
path, answer = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(16)
kids = []
def worker():
    with open(answer) as f:
        status, ctype, body = f.read().split('|', 2)
    while True:
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(('HTTP/1.0 %s\r\nContent-Type: %s\r\n\r\n%s' % (status, ctype, body)).encode())
        c.close()
def spawn():
    for _ in range(2):
        pid = os.fork()
        if pid == 0:
            # Die with the master, as uWSGI's workers do.
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                worker()
            finally:
                os._exit(0)
        kids.append(pid)
def stop_workers():
    for k in kids:
        os.kill(k, signal.SIGKILL)
    for k in kids:
        os.waitpid(k, 0)
    kids.clear()
def reload(*_):
    stop_workers()
    time.sleep(0.3)
    spawn()
def term(*_):
    stop_workers()
    os._exit(0)
signal.signal(signal.SIGHUP, reload)
signal.signal(signal.SIGTERM, term)
spawn()
print('ready', flush=True)
while True:
    signal.pause()
`;

let dir: string;
let ini: string;
let log: string;
let sock: string;
let answer: string;
const children: ChildProcess[] = [];
let http: Server | undefined;

/** What the stand-in's workers answer from their next start on. */
function answerWith(status: string, contentType = 'text/html', body = 'hello'): void {
  writeFileSync(answer, `${status}|${contentType}|${body}`);
}

async function startVassal(extraArgs: string[] = ['--ini', 'alleged.ini'], program = 'uwsgi-core'): Promise<ChildProcess> {
  rmSync(sock, { force: true });
  // Named uwsgi-core (or gunicorn) by a symlink: python finds its library from the link's target.
  const exe = join(dir, program);
  if (!existsSync(exe)) symlinkSync(PYTHON, exe);
  const child = spawn(exe, ['-c', VASSAL_SERVER, sock, answer, ...extraArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
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

/** What touchVassalIni does: snapshot, touch the ini, then wait. `reload` plays the emperor. */
/** Takes a snapshot, touches the ini, starts the wait, and runs `reload` `reloadAfterMs` after the touch. */
async function reloadAndWait(args: Record<string, string | number | undefined>, reload?: () => void, reloadAfterMs = 300): Promise<ProbeOutcome> {
  const snap = await runProbe<ProbeSnapshot>('snapshot', { ini, log: args.log });
  const now = new Date();
  utimesSync(ini, now, now);
  const waiting = runProbe<ProbeOutcome>('wait', { ini, procs: snap.procs, 'log-offset': snap.logSize ?? 0, interval: 0.1, timeout: 10, ...args });
  if (reload) await later(reloadAfterMs, reload);
  return waiting;
}

const later = (ms: number, fn: () => void) => new Promise<void>((resolve) => setTimeout(() => (fn(), resolve()), ms));

/** A project dir the reproduction loads from: `files` relative to it. */
function project(files: Record<string, string>): string {
  const root = join(dir, 'project');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  return root;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deployfile-probe-'));
  ini = join(dir, 'alleged.ini');
  log = join(dir, 'alleged.log');
  sock = join(dir, 'alleged.sock');
  answer = join(dir, 'answer');
  answerWith('200 OK');
  writeFileSync(ini, `[uwsgi]\nsocket = ${sock}\n`);
  writeFileSync(log, '*** Starting uWSGI 2.0.21 (64bit) on [earlier] ***\nWSGI app 0 (mountpoint=\'\') ready in 1 seconds\n');
});

afterEach(async () => {
  for (const child of children.splice(0)) await stop(child);
  await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  http = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!usable)('the probe script touchVassalIni runs on the server', () => {
  it("snapshot records the log size, the vassal's master and workers, and the ini's owner", async () => {
    const vassal = await startVassal();
    const snap = await runProbe<ProbeSnapshot>('snapshot', { ini, log });
    expect(snap.logSize).toBe(readFileSync(log).length);
    expect(snap.logError).toBeNull();
    const procs = snap.procs.split(',').map((p) => p.split(':').map(Number));
    expect(procs).toHaveLength(3);
    expect(procs.filter(([, , ppid]) => ppid === vassal.pid)).toHaveLength(2);
    expect(procs.some(([pid]) => pid === vassal.pid)).toBe(true);
    expect(snap.ini).toMatchObject({ path: ini, uid: process.getuid?.(), mode: '0644' });
  });

  it('snapshot leaves out uWSGI processes of other vassals, and itself (its arguments name the ini)', async () => {
    await startVassal(['--ini', 'other.ini']);
    const snap = await runProbe<ProbeSnapshot>('snapshot', { ini });
    expect(snap.procs).toBe('');
  });

  it("snapshot returns only once the clock's second is past the ini's mtime, so the touch that follows is seen", async () => {
    const now = Date.now() / 1000;
    utimesSync(ini, now, now);
    const snap = await runProbe<ProbeSnapshot>('snapshot', { ini });
    expect(Math.floor(snap.now)).toBeGreaterThan(Math.floor(snap.mtime ?? Infinity));
  });

  describe('--settle-earlier: a reload an earlier touch started is waited for before touching again', () => {
    const workerPids = (snap: ProbeSnapshot, master: number) =>
      snap.procs
        .split(',')
        .map((p) => p.split(':').map(Number))
        .filter(([, , ppid]) => ppid === master)
        .map(([pid]) => pid);

    it('waits until the workers are newer than that touch, and says how long', async () => {
      const vassal = await startVassal();
      const before = workerPids(await runProbe<ProbeSnapshot>('snapshot', { ini }), vassal.pid!);
      // Someone touched the ini a moment ago, and the emperor has just begun the reload.
      const now = new Date();
      utimesSync(ini, now, now);
      vassal.kill('SIGHUP');
      const snap = await runProbe<ProbeSnapshot>('snapshot', { ini, 'settle-earlier': 10 });
      expect(snap.earlier).toMatchObject({ settled: true });
      expect(snap.earlier!.waited).toBeGreaterThan(0);
      // What it records is the instance after that reload, not the one it replaced.
      const after = workerPids(snap, vassal.pid!);
      expect(after).toHaveLength(2);
      expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    });

    it('gives up after the given seconds when nothing reloads (and says it did not settle)', async () => {
      await startVassal();
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const now = new Date();
      utimesSync(ini, now, now); // touched, and nobody acts on it
      const snap = await runProbe<ProbeSnapshot>('snapshot', { ini, 'settle-earlier': 1 });
      expect(snap.earlier).toMatchObject({ settled: false });
      expect(snap.earlier!.waited).toBeGreaterThanOrEqual(1);
    });

    it('does not wait for a vassal whose last touch is long past, nor without the option', async () => {
      await startVassal();
      const past = new Date(Date.now() - 300_000);
      utimesSync(ini, past, past);
      expect((await runProbe<ProbeSnapshot>('snapshot', { ini, 'settle-earlier': 10 })).earlier).toBeNull();
      const now = new Date();
      utimesSync(ini, now, now);
      expect((await runProbe<ProbeSnapshot>('snapshot', { ini })).earlier).toBeNull();
    });
  });

  it('without a log: new workers, the old ones gone, are the new instance; the verdict comes as soon as it answers', async () => {
    const vassal = await startVassal();
    // A grace longer than the timeout: a verdict at all proves it came from the processes, not from waiting.
    const outcome = await reloadAndWait({ socket: sock, protocol: 'uwsgi', grace: 60, timeout: 20 }, () => vassal.kill('SIGHUP'));
    expect(outcome).toMatchObject({ ok: true, kind: 'answered', source: 'procs', probe: 'HTTP/1.0 200 OK' });
    expect(outcome.evidence).toMatch(/^new uWSGI processes \(pids \d+,\d+\)$/);
    expect(outcome.seconds).toBeLessThan(20);
  });

  it('does not take the old instance answering for the new one', async () => {
    await startVassal();
    const outcome = await reloadAndWait({ socket: sock, timeout: 1 });
    expect(outcome).toMatchObject({ ok: false, kind: 'timeout-no-restart', evidence: null });
    expect(outcome.reason).toMatch(/^no sign of a restart within 1s/);
  });

  describe('--mercy-until: a master left deaf to reloads by an earlier touch reloads by itself when its mercy runs out', () => {
    it('with no restart by the timeout, keeps waiting until then, and says it did', async () => {
      const vassal = await startVassal();
      // The restart comes 2.5 s after the touch, past the 1 s timeout, as when the mercy runs out.
      // (Timed from the touch, not from the call: the snapshot before it takes a while on a busy machine.)
      const outcome = await reloadAndWait({ socket: sock, timeout: 1, 'mercy-until': Date.now() / 1000 + 15 }, () => vassal.kill('SIGHUP'), 2500);
      expect(outcome).toMatchObject({ ok: true, kind: 'answered', source: 'procs', waitedForMercy: true });
      expect(outcome.seconds).toBeGreaterThan(2);
      expect(outcome.seconds).toBeLessThan(15);
    });

    it('and when nothing restarts by then either, says the mercy had run out', async () => {
      await startVassal();
      const outcome = await reloadAndWait({ socket: sock, timeout: 1, 'mercy-until': Date.now() / 1000 + 4 });
      expect(outcome).toMatchObject({ ok: false, kind: 'timeout-no-restart', evidence: null, waitedForMercy: true });
      expect(outcome.reason).toMatch(/^no sign of a restart within \d+s, though the reload-mercy an earlier touch may have started had run out$/);
      // Past its own 1 s timeout, to the mercy's end.
      expect(outcome.seconds).toBeGreaterThan(1.5);
    });

    it('does not wait past the timeout for a restart that was seen', async () => {
      const vassal = await startVassal();
      const outcome = await reloadAndWait({ socket: sock, timeout: 10, 'mercy-until': Date.now() / 1000 + 60 }, () => vassal.kill('SIGHUP'));
      expect(outcome).toMatchObject({ ok: true, waitedForMercy: false });
      expect(outcome.seconds).toBeLessThan(10);
    });
  });

  it('succeeds once the log shows the restart and the socket answers', async () => {
    await startVassal();
    const outcome = await reloadAndWait({ log, socket: sock }, () =>
      appendFileSync(log, '*** Starting uWSGI 2.0.21 (64bit) on [now] ***\nspawned uWSGI worker 1 (pid: 1, cores: 1)\n'),
    );
    expect(outcome).toMatchObject({ ok: true, evidence: 'uWSGI restarted (log)', source: 'log', probe: 'HTTP/1.0 200 OK' });
    expect(outcome.log).not.toContain('[earlier]');
  });

  it('gives up early, with the log since the touch, when uWSGI could not load the app', async () => {
    await startVassal();
    const broken = readFileSync(join(import.meta.dirname, 'fixtures', 'uwsgi-import-error.txt'), 'utf8');
    const outcome = await reloadAndWait({ log, socket: sock, timeout: 20 }, () => appendFileSync(log, broken));
    expect(outcome).toMatchObject({ ok: false, kind: 'log', reason: 'uWSGI could not load the app' });
    expect(outcome.seconds).toBeLessThan(15);
    expect(outcome.log).toContain("ModuleNotFoundError: No module named 'missing_module_xyz'");
  });

  it("fails at the first answer without an app (uWSGI's bare 500), and reproduces the load: the missing callable", async () => {
    const root = project({
      'site_pkg/__init__.py': '',
      'site_pkg/wsgi.py': 'def app(environ, start_response):\n    start_response("200 OK", [])\n    return [b"ok"]\n',
    });
    const load: VassalLoad = { chdir: root, env: [], pythonpath: [], module: 'site_pkg.wsgi', callable: 'application' };
    const vassal = await startVassal();
    answerWith('500 Internal Server Error', 'text/plain', 'Internal Server Error');
    const outcome = await reloadAndWait({ socket: sock, load: JSON.stringify(load), timeout: 20 }, () => vassal.kill('SIGHUP'));
    expect(outcome).toMatchObject({ ok: false, kind: 'no-app', status: 500, probe: 'HTTP/1.0 500 Internal Server Error' });
    // Decided by the answer, well before the 20s timeout (no waiting for it to run out).
    expect(outcome.seconds).toBeLessThan(15);
    expect(outcome.repro).toMatchObject({
      ok: false,
      stage: 'callable',
      type: 'AttributeError',
      message: "module 'site_pkg.wsgi' has no attribute 'application'",
      candidates: ['app'],
      command: `cd ${root}; python3 -c 'import site_pkg.wsgi; site_pkg.wsgi.application'`,
    });
  });

  it('keeps an app that answers 500 under watch for three answers, then calls it in-process for the exception', async () => {
    const root = project({
      'app.py': 'import os\ndef application(environ, start_response):\n    return [1 / int(os.environ["DIVISOR"])]\n',
    });
    const load: VassalLoad = { chdir: root, env: [['DIVISOR', '0']], pythonpath: [], file: 'app.py' };
    const vassal = await startVassal();
    answerWith('500 Internal Server Error', 'text/html', '<h1>Server Error (500)</h1>');
    const outcome = await reloadAndWait({ socket: sock, load: JSON.stringify(load), timeout: 20 }, () => vassal.kill('SIGHUP'));
    expect(outcome).toMatchObject({ ok: false, kind: 'http-500', reason: 'the new instance answers HTTP 500 (3 times)' });
    expect(outcome.repro).toMatchObject({ ok: false, stage: 'call', type: 'ZeroDivisionError', message: 'division by zero' });
    expect(outcome.repro?.frames?.at(-1)).toMatchObject({ file: join(root, 'app.py'), line: 3, name: 'application' });
  });

  it.skipIf(!hasDjango)("catches a Django view's exception through got_request_exception (Django answers the 500 itself)", async () => {
    const root = project({
      'proj/__init__.py': '',
      'proj/settings.py': 'SECRET_KEY = "x"\nDEBUG = False\nALLOWED_HOSTS = ["localhost"]\nROOT_URLCONF = "proj.urls"\n',
      'proj/urls.py': 'from django.urls import path\ndef boom(request):\n    raise LookupError("no such page in the test")\nurlpatterns = [path("", boom)]\n',
      'proj/wsgi.py': 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")\nfrom django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n',
    });
    const home = join(dir, 'venv');
    mkdirSync(join(home, 'bin'), { recursive: true });
    symlinkSync(DJANGO_PYTHON, join(home, 'bin', 'python'));
    const load: VassalLoad = { chdir: root, home, env: [], pythonpath: [], module: 'proj.wsgi', callable: 'application' };
    const vassal = await startVassal();
    answerWith('500 Internal Server Error', 'text/html', '<h1>Server Error (500)</h1>');
    const outcome = await reloadAndWait({ socket: sock, load: JSON.stringify(load), timeout: 20 }, () => vassal.kill('SIGHUP'));
    expect(outcome.repro).toMatchObject({ stage: 'call', type: 'LookupError', message: 'no such page in the test', python: join(home, 'bin', 'python') });
    expect(outcome.repro?.frames?.at(-1)).toMatchObject({ file: join(root, 'proj', 'urls.py'), line: 3, name: 'boom' });
  });

  it('reproduces a SyntaxError with its file and line, and an ImportError with its last frame', async () => {
    const vassal = await startVassal();
    answerWith('500 Internal Server Error', 'text/plain', 'Internal Server Error');
    const root = project({ 'bad/__init__.py': '', 'bad/wsgi.py': 'import os\n\ndef application(:\n    pass\n', 'worse/__init__.py': '', 'worse/wsgi.py': 'import os\nimport missing_module_xyz\n' });
    const syntax = await reloadAndWait({ socket: sock, load: JSON.stringify({ chdir: root, env: [], pythonpath: [], module: 'bad.wsgi' }) }, () => vassal.kill('SIGHUP'));
    expect(syntax.repro).toMatchObject({ stage: 'import', type: 'SyntaxError', message: 'invalid syntax (wsgi.py, line 3)' });
    expect(syntax.repro?.syntax).toMatchObject({ file: join(root, 'bad', 'wsgi.py'), line: 3, code: 'def application(:' });
    const missing = await reloadAndWait({ socket: sock, load: JSON.stringify({ chdir: root, env: [], pythonpath: [], module: 'worse.wsgi' }) }, () => vassal.kill('SIGHUP'));
    expect(missing.repro).toMatchObject({ stage: 'import', type: 'ModuleNotFoundError', message: "No module named 'missing_module_xyz'" });
    expect(missing.repro?.frames).toEqual([{ file: join(root, 'worse', 'wsgi.py'), line: 2, name: '<module>', code: 'import missing_module_xyz' }]);
  });

  it('says the vassal is not running when its processes are gone and the socket refuses, without waiting for the timeout', async () => {
    const vassal = await startVassal();
    const outcome = await reloadAndWait({ socket: sock, settle: 1, timeout: 30 }, () => vassal.kill('SIGTERM'));
    expect(outcome).toMatchObject({ ok: false, kind: 'dead' });
    expect(outcome.reason).toMatch(/^the vassal is not running: no uWSGI process of uid \d+ and .* refuses connections$/);
    // Decided by the evidence, not by the 30s timeout running out.
    expect(outcome.seconds).toBeLessThan(20);
    expect(outcome.socketDir).toMatchObject({ path: dir, mode: '0700', writable: true });
  });

  it('probes a health URL when one is given', async () => {
    const vassal = await startVassal();
    http = createServer((_, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => http?.listen(0, '127.0.0.1', resolve));
    const address = http.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/health`;
    const outcome = await reloadAndWait({ url }, () => vassal.kill('SIGHUP'));
    expect(outcome).toMatchObject({ ok: true, probe: `HTTP 204 from ${url}` });
  });

  it("a health URL answering 502 while the vassal's socket is up: the web server cannot reach it; the socket's mode is shown", async () => {
    const vassal = await startVassal();
    http = createServer((_, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>502 Bad Gateway</h1>'));
    await new Promise<void>((resolve) => http?.listen(0, '127.0.0.1', resolve));
    const address = http.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
    const outcome = await reloadAndWait({ url, socket: sock }, () => vassal.kill('SIGHUP'));
    expect(outcome).toMatchObject({ ok: false, kind: 'gateway', reason: 'the web server cannot reach the new instance (HTTP 502, 3 times)' });
    expect(outcome.socketFile).toMatchObject({ path: sock, uid: process.getuid?.() });
  });

  describe('an app server of vars.app (no vassal ini): its processes are told by program name and user', () => {
    it('a restart by its supervisor (the old processes gone, new ones up) is the new instance, and it answers', async () => {
      const old = await startVassal([], 'gunicorn');
      // A uWSGI of the same user is not the gunicorn's.
      const uwsgiSock = sock;
      sock = join(dir, 'other.sock');
      const uwsgi = await startVassal();
      sock = uwsgiSock;
      const snap = await runProbe<ProbeSnapshot>('snapshot', { program: 'gunicorn' });
      const pids = snap.procs.split(',').map((p) => Number(p.split(':')[0]));
      expect(pids).toContain(old.pid);
      expect(pids).not.toContain(uwsgi.pid);
      expect(snap.ini).toBeNull();
      // As if the restart command had taken 5 s before the wait began (supervisorctl waits startsecs and more).
      const start = Date.now() / 1000 - 5;
      const waiting = runProbe<ProbeOutcome>('wait', { program: 'gunicorn', procs: snap.procs, start, socket: sock, protocol: 'http', interval: 0.1, timeout: 10 });
      // What supervisorctl restart does: stop the old master, start a new one.
      await later(300, () => undefined);
      await stop(old);
      const fresh = await startVassal([], 'gunicorn');
      const outcome = await waiting;
      expect(outcome).toMatchObject({ ok: true, kind: 'answered', source: 'procs' });
      // Counted from before the restart (the snapshot's clock), not from when the restart command returned.
      expect(outcome.seconds).toBeGreaterThanOrEqual(5);
      expect(outcome.evidence).toMatch(new RegExp(`^new gunicorn processes \\(pids [\\d,]*${fresh.pid}`));
    });

    it('an app server started on demand (mod_fcgid after a graceful): its processes gone and none new, the health URL is asked after the grace', async () => {
      // Not named uwsgi: other tests' uWSGI processes of root would count as its.
      const old = await startVassal([], 'ondemand');
      http = createServer((_, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
      await new Promise<void>((resolve) => http?.listen(0, '127.0.0.1', resolve));
      const address = http.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/revision`;
      const snap = await runProbe<ProbeSnapshot>('snapshot', { program: 'ondemand' });
      const waiting = runProbe<ProbeOutcome>('wait', { program: 'ondemand', procs: snap.procs, start: Date.now() / 1000, url, grace: 1, interval: 0.1, timeout: 20 });
      await later(200, () => old.kill('SIGTERM'));
      const outcome = await waiting;
      expect(outcome).toMatchObject({ ok: true, kind: 'answered', source: 'grace', probe: `HTTP 200 from ${url}` });
      expect(outcome.evidence).toBe(`the old ondemand processes are gone and none runs yet (started on demand?); probed ${url} after 1s`);
      expect(outcome.seconds).toBeLessThan(10);
    });

    it('names an app.user the server does not have, instead of a traceback', async () => {
      await expect(runProbe('snapshot', { program: 'gunicorn', user: 'no-such-user-df' })).rejects.toThrow('there is no user no-such-user-df on this server (vars.app.user names whose processes the app server runs)');
    });

    it('says the app server is not running when its processes are gone and its socket refuses', async () => {
      const old = await startVassal([], 'gunicorn');
      const snap = await runProbe<ProbeSnapshot>('snapshot', { program: 'gunicorn' });
      const waiting = runProbe<ProbeOutcome>('wait', { program: 'gunicorn', procs: snap.procs, start: Date.now() / 1000, socket: sock, protocol: 'http', interval: 0.1, settle: 1, timeout: 30 });
      await later(200, () => old.kill('SIGTERM'));
      const outcome = await waiting;
      expect(outcome).toMatchObject({ ok: false, kind: 'dead', ini: null });
      expect(outcome.reason).toMatch(/^the app server is not running: no gunicorn process of uid \d+ and .*alleged\.sock refuses connections$/);
    });
  });
});
