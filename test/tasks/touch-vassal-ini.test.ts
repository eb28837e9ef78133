import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AbortError } from '../../src/index.ts';
import { AppNotBackError, touchVassalIni } from '../../tasks/touch-vassal-ini.ts';
import { explainUwsgiLog, parseVassalIni, PROBE_SCRIPT } from '../../tasks/uwsgi.ts';
import { errorOf, fakeContext } from '../helpers/fake-context.ts';

// Real vassal logs, captured from uWSGI 2.0.21 (Debian) after touching a broken vassal.
const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const IMPORT_ERROR_LOG = fixture('uwsgi-import-error.txt');
const CALLABLE_LOG = fixture('uwsgi-callable-not-found.txt');

const INI = '/etc/uwsgi/emperor.d/alleged.ini';
const VASSAL = [
  '[uwsgi]',
  'plugin = python3',
  'base = /home/alleged',
  'chdir = %(base)/Sites/alleged',
  'module = alleged.wsgi:application',
  'socket = /run/uwsgi/%n.sock',
  'logto = /var/log/uwsgi/%n.log',
  '',
].join('\n');

describe('parseVassalIni', () => {
  it('finds the socket and the log, expanding %n and %(placeholders)', () => {
    expect(parseVassalIni(VASSAL, INI)).toEqual({ socket: { protocol: 'uwsgi', address: '/run/uwsgi/alleged.sock' }, log: '/var/log/uwsgi/alleged.log' });
    expect(parseVassalIni('[uwsgi]\nsocket = %(base)/x.sock\n', INI)).toEqual({});
    expect(parseVassalIni('[uwsgi]\nbase = /srv\nsocket = %(base)/%n.sock\ndaemonize = %d%n.log\n', INI)).toEqual({
      socket: { protocol: 'uwsgi', address: '/srv/alleged.sock' },
      log: '/etc/uwsgi/emperor.d/alleged.log',
    });
  });

  it('reads http-socket and logger = file:, ignores other sections and comments', () => {
    const text = '; a comment\n[other]\nsocket = /nope.sock\n[uwsgi]\n# socket = /commented.sock\nhttp-socket = 127.0.0.1:8001\nlogger = file:logfile=/var/log/a.log,maxsize=1000\n';
    expect(parseVassalIni(text, INI)).toEqual({ socket: { protocol: 'http', address: '127.0.0.1:8001' }, log: '/var/log/a.log' });
  });

  it('leaves out values only the server could resolve, rather than guess', () => {
    expect(parseVassalIni('[uwsgi]\nsocket = $(RUNTIME_DIR)/a.sock\nlogto = /var/log/%k.log\n', INI)).toEqual({});
  });
});

describe('explainUwsgiLog', () => {
  it("shows an import error's last frame, exception and uWSGI's verdict", () => {
    expect(explainUwsgiLog(IMPORT_ERROR_LOG)).toEqual([
      '  File "/tmp/uwlab/app/bad.py", line 1, in <module>',
      '    import missing_module_xyz',
      "ModuleNotFoundError: No module named 'missing_module_xyz'",
      "unable to load app 0 (mountpoint='') (callable not found or import error)",
      '*** no app loaded. going in full dynamic mode ***',
    ]);
  });

  it('shows a missing callable, once per kind of line', () => {
    expect(explainUwsgiLog(CALLABLE_LOG)).toEqual([
      "unable to load app 0 (mountpoint='') (callable not found or import error)",
      '*** no app loaded. going in full dynamic mode ***',
      '--- no python application found, check your startup logs for errors ---',
    ]);
  });

  it('shows socket permission and bind errors', () => {
    const log = 'uwsgi socket 0 bound to UNIX address /run/uwsgi/a.sock fd 3\nbind(): Permission denied [core/socket.c line 230]\nchmod(): Operation not permitted\n';
    expect(explainUwsgiLog(log)).toEqual(['bind(): Permission denied [core/socket.c line 230]']);
  });
});

const SNAPSHOT = JSON.stringify({ logSize: 1234, logError: null, pids: [10, 11], mtime: 1700000000.5, now: 1700000001.1 });
const waitOutcome = (over: Record<string, unknown>) =>
  JSON.stringify({ ok: true, reason: 'answered', evidence: 'uWSGI restarted (log)', probe: 'HTTP/1.0 200 OK', log: '', logError: null, seconds: 2.5, ...over });

function vassalContext(options: Parameters<typeof fakeContext>[0] = {}) {
  const c = fakeContext(options);
  c.script(`cat ${INI}`, { stdout: VASSAL });
  c.script('python3 - snapshot', { stdout: `${SNAPSHOT}\n` });
  return c;
}

describe('touchVassalIni', () => {
  it('touches the ini between a snapshot and a bounded wait for the new instance', async () => {
    const c = vassalContext();
    c.script('python3 - wait', { stdout: `${waitOutcome({})}\n` });
    await touchVassalIni().run(c);
    const args = `--ini ${INI} --log /var/log/uwsgi/alleged.log --socket /run/uwsgi/alleged.sock --protocol uwsgi`;
    expect(c.recorder.lines).toEqual([
      `cat ${INI}`,
      `python3 - snapshot ${args}`,
      `touch ${INI}`,
      `python3 - wait ${args} --log-offset 1234 --pids 10,11 --timeout 30 --interval 0.5 --grace 5`,
    ]);
    const [, snapshot, , wait] = c.recorder.commands;
    expect(snapshot?.options).toMatchObject({ stdin: PROBE_SCRIPT, quiet: true, warn: true });
    expect(wait?.options).toMatchObject({ stdin: PROBE_SCRIPT, quiet: true, warn: true, timeout: 60_000 });
    expect(c.recorder.logs).toEqual(['alleged is back after 2.5s: uWSGI restarted (log); HTTP/1.0 200 OK']);
  });

  it('fails with the uWSGI log lines that explain why the app did not come back', async () => {
    const c = vassalContext();
    c.script('python3 - wait', { stdout: waitOutcome({ ok: false, reason: 'uWSGI could not load the app', probe: null, log: IMPORT_ERROR_LOG, seconds: 1.5 }) });
    const error = await errorOf(touchVassalIni().run(c));
    expect(error).toBeInstanceOf(AppNotBackError);
    expect(error.message).toBe(
      [
        `alleged did not come back after touching ${INI}: uWSGI could not load the app (after 1.5s)`,
        'uWSGI log /var/log/uwsgi/alleged.log since the touch:',
        '    File "/tmp/uwlab/app/bad.py", line 1, in <module>',
        '      import missing_module_xyz',
        "  ModuleNotFoundError: No module named 'missing_module_xyz'",
        "  unable to load app 0 (mountpoint='') (callable not found or import error)",
        '  *** no app loaded. going in full dynamic mode ***',
      ].join('\n'),
    );
    expect((error as AppNotBackError).logLines).toContain("ModuleNotFoundError: No module named 'missing_module_xyz'");
  });

  it('reports a timeout with the last check and the tail of an unexplained log', async () => {
    const c = vassalContext();
    const log = '*** Starting uWSGI 2.0.21 (64bit) ***\nspawned uWSGI worker 1 (pid: 42, cores: 1)\n';
    c.script('python3 - wait', { stdout: waitOutcome({ ok: false, reason: 'the app did not answer in time', probe: 'HTTP/1.0 502 Bad Gateway', log, seconds: 30 }) });
    const error = await errorOf(touchVassalIni().run(c));
    expect(error.message).toContain('the app did not answer in time (after 30s)\nLast check: HTTP/1.0 502 Bad Gateway\n');
    expect(error.message).toContain('  spawned uWSGI worker 1 (pid: 42, cores: 1)');
  });

  it('probes the healthUrl and reads the uwsgiLog given in vars', async () => {
    const c = vassalContext({ site: { name: 'alleged', vars: { healthUrl: 'http://127.0.0.1:8081/health?full=1', uwsgiLog: '/srv/log/{site}.log' } } });
    c.script('python3 - wait', { stdout: waitOutcome({}) });
    await touchVassalIni({ timeout: '1m', interval: 250 }).run(c);
    expect(c.recorder.lines[3]).toBe(
      `python3 - wait --ini ${INI} --log /srv/log/alleged.log --socket /run/uwsgi/alleged.sock --protocol uwsgi --log-offset 1234 --pids 10,11 ` +
        "--url 'http://127.0.0.1:8081/health?full=1' --timeout 60 --interval 0.25 --grace 5",
    );
  });

  it('does not touch a vassal ini it cannot read (touch would create an empty vassal)', async () => {
    const c = fakeContext();
    c.script(`cat ${INI}`, { exitCode: 1, stderr: `cat: ${INI}: No such file or directory` });
    const error = await errorOf(touchVassalIni().run(c));
    expect(error).toBeInstanceOf(AbortError);
    expect(error.message).toContain(`cannot read the vassal ini ${INI}: cat: ${INI}: No such file or directory`);
    expect(c.recorder.lines).toEqual([`cat ${INI}`]);
  });

  it('does not touch when the server cannot run the check, and says how to skip it', async () => {
    const c = fakeContext();
    c.script(`cat ${INI}`, { stdout: VASSAL });
    c.script('python3 - snapshot', { exitCode: 127, stderr: 'sh: 1: python3: not found' });
    const error = await errorOf(touchVassalIni().run(c));
    expect(error).toBeInstanceOf(AbortError);
    expect(error.message).toContain('python3: not found');
    expect(error.message).toContain('touchVassalIni({ verify: false })');
    expect(c.recorder.lines.some((line) => line.startsWith('touch'))).toBe(false);
  });

  it('fails clearly when the check itself breaks after the touch', async () => {
    const c = vassalContext();
    c.script('python3 - wait', { exitCode: 1, stderr: 'Traceback (most recent call last):\nKeyError: timeout' });
    const error = await errorOf(touchVassalIni().run(c));
    expect(error).toBeInstanceOf(AppNotBackError);
    expect(error.message).toContain('the check failed: Traceback (most recent call last):\n  KeyError: timeout');
  });

  it('warns, and says so on failure, when no uWSGI log is known', async () => {
    const c = fakeContext();
    c.script(`cat ${INI}`, { stdout: '[uwsgi]\nsocket = /run/uwsgi/alleged.sock\n' });
    c.script('python3 - snapshot', { stdout: SNAPSHOT });
    c.script('python3 - wait', { stdout: waitOutcome({ ok: false, reason: 'the app did not answer in time', evidence: null, probe: 'ConnectionRefusedError: [Errno 111] Connection refused' }) });
    const error = await errorOf(touchVassalIni().run(c));
    expect(c.recorder.warnings[0]).toMatch(/no uWSGI log for alleged .*set the uwsgiLog var/);
    expect(c.recorder.lines[1]).toBe(`python3 - snapshot --ini ${INI} --socket /run/uwsgi/alleged.sock --protocol uwsgi`);
    expect(error.message).toContain("No uWSGI log to show: set the uwsgiLog var to the vassal's log.");
  });

  it('only touches under --dry-run or with verify: false', async () => {
    const dry = fakeContext({ dryRun: true });
    await touchVassalIni().run(dry);
    expect(dry.recorder.lines).toEqual([`touch ${INI}`]);
    expect(dry.recorder.logs).toEqual(['would wait up to 30s for alleged to answer']);
    const unchecked = fakeContext();
    await touchVassalIni({ verify: false, vassal: '/etc/uwsgi/vassals/{site}.ini' }).run(unchecked);
    expect(unchecked.recorder.lines).toEqual(['touch /etc/uwsgi/vassals/alleged.ini']);
  });
});
