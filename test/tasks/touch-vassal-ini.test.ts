import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { AbortError } from '../../src/index.ts';
import { AppNotBackError, touchVassalIni } from '../../tasks/touch-vassal-ini.ts';
import { explainReload, explainUwsgiLog, parseVassalIni, PROBE_SCRIPT, type ProbeOutcome } from '../../tasks/uwsgi.ts';
import { errorOf, scriptedContext } from '../helpers/task-context.ts';

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
    expect(parseVassalIni(VASSAL, INI)).toMatchObject({ socket: { protocol: 'uwsgi', address: '/run/uwsgi/alleged.sock' }, log: '/var/log/uwsgi/alleged.log' });
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

  it('reads a fastcgi-socket (what nginx fastcgi_pass and mod_fcgid speak), probed over FastCGI', () => {
    expect(parseVassalIni('[uwsgi]\nfastcgi-socket = /run/uwsgi/%n.sock\n', INI)).toEqual({ socket: { protocol: 'fastcgi', address: '/run/uwsgi/alleged.sock' } });
  });

  it("reads how the blog post's skeleton loads the app: chdir, home, env, module:callable", () => {
    const skel = [
      '[uwsgi]',
      'chdir = /home/%n/Sites/%n',
      'socket = /var/run/uwsgi/%n.sock',
      'env = DJANGO_SETTINGS_MODULE=%n.settings',
      'env = A=b=c',
      'home = /home/%n/virtualenvs/%n',
      'module = %n.wsgi:application',
      '',
    ].join('\n');
    expect(parseVassalIni(skel, INI).load).toEqual({
      chdir: '/home/alleged/Sites/alleged',
      home: '/home/alleged/virtualenvs/alleged',
      env: [
        ['DJANGO_SETTINGS_MODULE', 'alleged.settings'],
        ['A', 'b=c'],
      ],
      pythonpath: [],
      module: 'alleged.wsgi',
      callable: 'application',
    });
  });

  it('reads wsgi-file, callable, pythonpath and a mount, and %(placeholders) of them', () => {
    const text = '[uwsgi]\nbase = /srv/%n\nvirtualenv = %(base)/venv\npp = %(base)/lib\npython-path = /opt/x\nwsgi-file = %(base)/app.py\ncallable = app\n';
    expect(parseVassalIni(text, INI).load).toEqual({ home: '/srv/alleged/venv', env: [], pythonpath: ['/srv/alleged/lib', '/opt/x'], file: '/srv/alleged/app.py', callable: 'app' });
    expect(parseVassalIni('[uwsgi]\nmount = /=site.wsgi:app\n', INI).load).toMatchObject({ module: 'site.wsgi', callable: 'app' });
    expect(parseVassalIni('[uwsgi]\nmount = /=/srv/app.py\n', INI).load).toMatchObject({ file: '/srv/app.py' });
    expect(parseVassalIni('[uwsgi]\nsocket = /a.sock\n', INI).load).toBeUndefined();
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

const INI_FACTS = { path: INI, uid: 1001, gid: 998, user: 'alleged', group: 'uwsgi', mode: '0644' };
const SNAPSHOT = JSON.stringify({ logSize: 1234, logError: null, procs: '10:500:1,11:600:10', ini: INI_FACTS, uid: 1001, mtime: 1699913600.5, now: 1700000001.1 });
const outcomeOf = (over: Partial<ProbeOutcome>): ProbeOutcome => ({
  ok: true,
  kind: 'answered',
  reason: 'answered',
  evidence: 'new uWSGI processes (pids 12,13)',
  source: 'procs',
  probe: 'HTTP/1.0 200 OK',
  status: 200,
  body: '',
  log: '',
  logError: null,
  seconds: 1.2,
  ...over,
});
const waitOutcome = (over: Partial<ProbeOutcome>) => JSON.stringify(outcomeOf(over));
const REPRO_COMMAND = "cd /home/alleged/Sites/alleged; /home/alleged/virtualenvs/alleged/bin/python -c 'import alleged.wsgi; alleged.wsgi.application'";

function vassalContext(options: Parameters<typeof scriptedContext>[0] = {}, vassal = VASSAL) {
  const c = scriptedContext(options);
  c.script(`cat ${INI}`, { stdout: vassal });
  c.script('python3 - snapshot', { stdout: `${SNAPSHOT}\n` });
  return c;
}

describe('touchVassalIni', () => {
  it('touches the ini between a snapshot and a bounded wait for the new instance, and says how long the verdict took', async () => {
    const c = vassalContext();
    c.script('python3 - wait', { stdout: `${waitOutcome({})}\n` });
    await touchVassalIni().run(c);
    const load = JSON.stringify({ env: [], pythonpath: [], chdir: '/home/alleged/Sites/alleged', module: 'alleged.wsgi', callable: 'application' });
    expect(c.recorder.lines).toEqual([
      `cat ${INI}`,
      // A reload an earlier touch started is waited for first (at most 20 s): a touch during one can be lost.
      `python3 - snapshot --ini ${INI} --log /var/log/uwsgi/alleged.log --settle-earlier 20`,
      `touch ${INI}`,
      `python3 - wait --ini ${INI} --log /var/log/uwsgi/alleged.log --log-offset 1234 --procs 10:500:1,11:600:10 ` +
        `--socket /run/uwsgi/alleged.sock --protocol uwsgi --load '${load}' --timeout 30 --interval 0.5 --grace 5`,
    ]);
    const [, snapshot, , wait] = c.recorder.commands;
    // Both read the probe script on stdin and are quiet: their JSON never reaches the views. (Warn-only: see the failing snapshot and wait below; the bound: the next test.)
    expect(snapshot?.stdin).toBe(PROBE_SCRIPT);
    expect(wait?.stdin).toBe(PROBE_SCRIPT);
    expect([snapshot?.output, wait?.output]).toEqual(['', '']);
    expect(c.recorder.logs).toEqual(['alleged is back after 1.2s: new uWSGI processes (pids 12,13); HTTP/1.0 200 OK']);
    expect(c.recorder.warnings).toEqual([]);
  });

  describe('a reload an earlier touch started', () => {
    const contextWith = (earlier: object | null, vars: Record<string, unknown> = {}) => {
      const c = scriptedContext({ site: { vars } });
      c.script(`cat ${INI}`, { stdout: `${VASSAL}master-fifo = /home/alleged/uwsgi.fifo\n` });
      c.script('python3 - snapshot', { stdout: `${JSON.stringify({ ...JSON.parse(SNAPSHOT), earlier })}\n` });
      return c;
    };

    it('is waited for by the snapshot, and the log says how long', async () => {
      const c = contextWith({ ago: 1.4, waited: 2.1, settled: true });
      c.script('python3 - wait', { stdout: `${waitOutcome({})}\n` });
      await touchVassalIni().run(c);
      expect(c.recorder.logs[0]).toBe(`${INI} was touched 1.4s before this deploy; waited 2.1s for the reload that started to finish (a touch during a reload can be lost)`);
      expect(c.recorder.warnings).toEqual([]);
    });

    it('that never ends: a warning, the touch anyway, and a touch that changed nothing is explained by it', async () => {
      const c = contextWith({ ago: 3, waited: 20, settled: false });
      c.script('python3 - wait', {
        stdout: waitOutcome({ ok: false, kind: 'timeout-no-restart', reason: 'no sign of a restart within 30s (was the ini touched? is the emperor watching it?)', evidence: null, source: null, probe: null, seconds: 30.2 }),
      });
      const error = (await errorOf(touchVassalIni().run(c))) as AppNotBackError;
      expect(c.recorder.warnings).toEqual([`${INI} was touched 3s before this deploy, and the reload that started was not over after 20s; touching it anyway (uWSGI can lose a touch that comes during a reload)`]);
      expect(c.recorder.lines).toContain(`touch ${INI}`);
      expect(error.kind).toBe('timeout-no-restart');
      expect(error.message.split('\n')[1]).toBe(
        'The vassal was still reloading from a touch 3s before this one: uWSGI loses a reload asked for during a reload, and waits up to its reload-mercy (60 s) for a worker that missed the signal. ' +
          'Deploy again once the site has settled (a minute), and look for an earlier deploy or cron job touching the ini.',
      );
    });

    describe('that left the master deaf to reloads until its reload-mercy ran out', () => {
      // The ini was last touched 12 s before the snapshot; nothing the snapshot sees says a reload is under way.
      const recentContext = (vassal = VASSAL) => {
        const c = scriptedContext();
        c.script(`cat ${INI}`, { stdout: vassal });
        c.script('python3 - snapshot', { stdout: `${JSON.stringify({ ...JSON.parse(SNAPSHOT), mtime: 1700000001.1 - 12 })}\n` });
        return c;
      };
      const waitLine = (c: ReturnType<typeof scriptedContext>) => c.recorder.lines.find((line) => line.startsWith('python3 - wait')) ?? '';

      it('is waited out: with no restart by the timeout, the wait goes on until the mercy (60 s by default) has run out, and says what happened', async () => {
        const c = recentContext();
        c.script('python3 - wait', { stdout: `${waitOutcome({ seconds: 54.2, waitedForMercy: true })}\n` });
        await touchVassalIni().run(c);
        // The snapshot's clock, plus the mercy, plus the time a master takes to re-execute and load the app.
        expect(waitLine(c)).toMatch(/ --timeout 30 --interval 0\.5 --grace 5 --mercy-until 1700000081\.1$/);
        // Its bound is the mercy's end, not the 30 s timeout: the label says so.
        const wait = c.recorder.commands.find((command) => command.line.startsWith('python3 - wait'));
        expect(wait?.shown).toBe('python3 - wait: until the new instance of alleged answers (at most 80s)');
        expect(c.recorder.logs).toEqual(['alleged is back after 54.2s: new uWSGI processes (pids 12,13); HTTP/1.0 200 OK']);
        expect(c.recorder.warnings).toEqual([
          'alleged did not reload when touched, only 54.2s later: the ini had been touched 12s before this deploy, and uWSGI most likely dropped this touch ' +
            'while waiting out the reload-mercy (60 s) of the reload that one started. Touch a vassal again only once its last reload is over.',
        ]);
      });

      it('a hung wait is ended by the runner 30s after the mercy-long bound, not the timeout', async () => {
        expect(await hungWaitEndedAfterMs(() => recentContext(), 110_000)).toBe(110_000);
      });

      it("takes the ini's own reload-mercy", async () => {
        const c = recentContext(`${VASSAL}reload-mercy = 8\nworker-reload-mercy = 15\n`);
        c.script('python3 - wait', { stdout: `${waitOutcome({})}\n` });
        await touchVassalIni().run(c);
        expect(waitLine(c)).toMatch(/ --mercy-until 1700000036\.1$/);
        expect(c.recorder.warnings).toEqual([]);
      });

      it('still nothing after the mercy: the failure says an earlier touch can do this', async () => {
        const c = recentContext();
        c.script('python3 - wait', {
          stdout: waitOutcome({ ok: false, kind: 'timeout-no-restart', reason: 'no sign of a restart within 80s, though the reload-mercy an earlier touch may have started had run out', evidence: null, source: null, probe: null, seconds: 80.3, waitedForMercy: true }),
        });
        const error = (await errorOf(touchVassalIni().run(c))) as AppNotBackError;
        expect(error.kind).toBe('timeout-no-restart');
        expect(error.message).toContain(
          "The ini had been touched 12s before this deploy. A touch during a reload can leave uWSGI's master waiting out its reload-mercy (60 s) and dropping every reload asked for meanwhile; " +
            'the deploy waited until that mercy had run out, and still nothing restarted.',
        );
      });

      it('is not waited for when the last touch is older than a mercy and a reload', async () => {
        const c = scriptedContext();
        c.script(`cat ${INI}`, { stdout: VASSAL });
        c.script('python3 - snapshot', { stdout: `${JSON.stringify({ ...JSON.parse(SNAPSHOT), mtime: 1700000001.1 - 95 })}\n` });
        c.script('python3 - wait', { stdout: `${waitOutcome({})}\n` });
        await touchVassalIni().run(c);
        expect(waitLine(c)).not.toContain('--mercy-until');
      });
    });

    it('is not waited for when the reload does not touch the ini (the master FIFO)', async () => {
      const c = contextWith(null, { reload: 'fifo' });
      c.script('test -p', {});
      c.script('python3 - wait', { stdout: `${waitOutcome({})}\n` });
      await touchVassalIni().run(c);
      expect(c.recorder.lines[1]).toBe(`python3 - snapshot --ini ${INI} --log /var/log/uwsgi/alleged.log`);
    });
  });

  it('a wait whose connection hangs is ended by the runner 30s after its own bound', async () => {
    expect(await hungWaitEndedAfterMs(() => vassalContext(), 60_000)).toBe(60_000);
  });

  it("leads with the cause the vassal's log shows, then its lines", async () => {
    const c = vassalContext();
    c.script('python3 - wait', { stdout: waitOutcome({ ok: false, kind: 'log', reason: 'uWSGI could not load the app', evidence: 'uWSGI restarted (log)', source: 'log', probe: null, log: IMPORT_ERROR_LOG, seconds: 1.5 }) });
    const error = (await errorOf(touchVassalIni().run(c))) as AppNotBackError;
    expect(error).toBeInstanceOf(AppNotBackError);
    expect(error.headline).toBe("alleged: the new code does not load: ModuleNotFoundError: No module named 'missing_module_xyz'");
    expect(error.message).toBe(
      [
        "alleged: the new code does not load: ModuleNotFoundError: No module named 'missing_module_xyz'",
        'uWSGI could not load the app (1.5s after the touch).',
        'uWSGI log /var/log/uwsgi/alleged.log since the touch:',
        '    File "/tmp/uwlab/app/bad.py", line 1, in <module>',
        '      import missing_module_xyz',
        "  ModuleNotFoundError: No module named 'missing_module_xyz'",
        "  unable to load app 0 (mountpoint='') (callable not found or import error)",
        '  *** no app loaded. going in full dynamic mode ***',
      ].join('\n'),
    );
    expect(error).toMatchObject({ site: 'alleged', seconds: 1.5, kind: 'log' });
    expect(error.logLines).toContain("ModuleNotFoundError: No module named 'missing_module_xyz'");
  });

  it('without a readable log, leads with the load reproduced as the site user: a missing callable', async () => {
    const c = vassalContext();
    const repro = {
      ok: false,
      stage: 'callable',
      type: 'AttributeError',
      message: "module 'alleged.wsgi' has no attribute 'application'",
      frames: [],
      candidates: ['app'],
      command: REPRO_COMMAND,
    };
    c.script('python3 - wait', {
      stdout: waitOutcome({ ok: false, kind: 'no-app', reason: 'the new instance answers without an app (uWSGI: no python application found)', probe: 'HTTP/1.0 500 Internal Server Error', status: 500, logError: "[Errno 13] Permission denied: '/var/log/uwsgi/alleged.log'", seconds: 2.7, repro: repro as ProbeOutcome['repro'] }),
    });
    const error = (await errorOf(touchVassalIni().run(c))) as AppNotBackError;
    expect(error.message).toBe(
      [
        "alleged: the new code does not load: AttributeError: module 'alleged.wsgi' has no attribute 'application'",
        'the new instance answers without an app (uWSGI: no python application found) (2.7s after the touch).',
        "AttributeError: module 'alleged.wsgi' has no attribute 'application'",
        `  (it defines app: point module/callable in ${INI} at the WSGI app, or name it back)`,
        `Reproduced as alleged: ${REPRO_COMMAND}`,
        'Last check: HTTP/1.0 500 Internal Server Error',
        "(The uWSGI log /var/log/uwsgi/alleged.log is not readable: [Errno 13] Permission denied: '/var/log/uwsgi/alleged.log'.)",
      ].join('\n'),
    );
    expect(error).toMatchObject({ seconds: 2.7, kind: 'no-app', logLines: [] });
  });

  it('reports a timeout with the last check and the tail of an unexplained log', async () => {
    const c = vassalContext();
    const log = '*** Starting uWSGI 2.0.21 (64bit) ***\nspawned uWSGI worker 1 (pid: 42, cores: 1)\n';
    c.script('python3 - wait', { stdout: waitOutcome({ ok: false, kind: 'timeout', reason: 'the new instance did not answer within 30s', probe: 'TimeoutError: timed out', log, seconds: 30 }) });
    const error = (await errorOf(touchVassalIni().run(c))) as AppNotBackError;
    expect(error.headline).toBe('alleged: the new instance did not answer within 30s');
    expect(error.message).toContain('(30s after the touch).\nLast check: TimeoutError: timed out\n');
    expect(error.message).toContain('  spawned uWSGI worker 1 (pid: 42, cores: 1)');
  });

  it('probes the healthUrl, asking the app for its path and host when reproducing, and reads the uwsgiLog given in vars', async () => {
    const c = vassalContext({ site: { name: 'alleged', vars: { healthUrl: 'http://127.0.0.1:8081/health?full=1', uwsgiLog: '/srv/log/{site}.log' } } }, '[uwsgi]\nsocket = /run/uwsgi/%n.sock\n');
    c.script('python3 - wait', { stdout: waitOutcome({}) });
    await touchVassalIni({ timeout: '1m', interval: 250 }).run(c);
    expect(c.recorder.lines[3]).toBe(
      `python3 - wait --ini ${INI} --log /srv/log/alleged.log --log-offset 1234 --procs 10:500:1,11:600:10 --socket /run/uwsgi/alleged.sock --protocol uwsgi ` +
        "--url 'http://127.0.0.1:8081/health?full=1' --path '/health?full=1' --host 127.0.0.1 --timeout 60 --interval 0.25 --grace 5",
    );
  });

  it('refuses, untouched, an ini owned by root: tyrant mode would not run it', async () => {
    const c = scriptedContext();
    c.script(`cat ${INI}`, { stdout: VASSAL });
    c.script('python3 - snapshot', { stdout: JSON.stringify({ ...JSON.parse(SNAPSHOT), ini: { ...INI_FACTS, uid: 0, gid: 0, user: 'root', group: 'root' } }) });
    const error = (await errorOf(touchVassalIni().run(c))) as AppNotBackError;
    expect(error.message).toBe(
      [
        `alleged: the uWSGI emperor (tyrant mode) will not run ${INI}: it is owned by root:root (uid/gid 0)`,
        "Tyrant mode runs a vassal as its ini's owner and group and refuses uid or gid 0: it has stopped this vassal, or never started it.",
        `Not touched. As root: chown alleged:uwsgi ${INI}`,
        "If this emperor is not in tyrant mode (a root-owned vassal with uid/gid in it), reload it another way: reload: 'touch-reload' or 'sudo-touch' (README: Choosing how a site reloads).",
      ].join('\n'),
    );
    expect(error).toMatchObject({ kind: 'ini-owner', seconds: null });
    expect(c.recorder.lines.some((line) => line.startsWith('touch'))).toBe(false);
  });

  it("a reload that could not be asked for (sudo refused) says why and what to set up, and does not wait for a verdict", async () => {
    const c = scriptedContext({ site: { vars: { reload: 'sudo-touch' } } });
    c.script(`cat ${INI}`, { stdout: VASSAL });
    c.script('python3 - snapshot', { stdout: JSON.stringify({ ...JSON.parse(SNAPSHOT), ini: { ...INI_FACTS, uid: 0, gid: 0, user: 'root', group: 'root' } }) });
    c.script(`sudo -n touch ${INI}`, { exitCode: 1, stderr: 'sudo: a password is required' });
    const error = await errorOf(touchVassalIni().run(c));
    expect(error).toBeInstanceOf(AbortError);
    expect(error.message).toBe(
      `alleged: could not reload (sudo -n touch ${INI}): sudo: a password is required. sudo must let the site user run exactly this without a password; as root, in /etc/sudoers.d/: <site> ALL=(root) NOPASSWD: /usr/bin/touch ${INI}`,
    );
    expect(c.recorder.lines.some((line) => line.startsWith('python3 - wait'))).toBe(false);
  });

  it('does not touch a vassal ini it cannot read (touch would create an empty vassal)', async () => {
    const c = scriptedContext();
    c.script(`cat ${INI}`, { exitCode: 1, stderr: `cat: ${INI}: No such file or directory` });
    const error = await errorOf(touchVassalIni().run(c));
    expect(error).toBeInstanceOf(AbortError);
    expect(error.message).toContain(`cannot read the vassal ini ${INI}: cat: ${INI}: No such file or directory`);
    expect(c.recorder.lines).toEqual([`cat ${INI}`]);
  });

  it('does not touch when the server cannot run the check, and says how to skip it', async () => {
    const c = scriptedContext();
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
    expect(error.message).toBe(`alleged: could not tell whether the app came back after touching ${INI}\nthe check failed: Traceback (most recent call last):\n  KeyError: timeout`);
  });

  describe('an app server of vars.app (gunicorn under supervisor)', () => {
    const APP = { program: 'gunicorn', socket: '/home/alleged/gunicorn.sock', module: 'alleged.wsgi:application' };
    const APP_SNAPSHOT = JSON.stringify({ ...JSON.parse(SNAPSHOT), logSize: null, ini: null, mtime: null });
    const appContext = (vars: Record<string, unknown>) => {
      const c = scriptedContext({ site: { vars } });
      c.script('python3 - snapshot', { stdout: `${APP_SNAPSHOT}\n` });
      return c;
    };

    it('reads no vassal ini: restarts the program, and tells the new instance by its processes, asking its socket', async () => {
      const c = appContext({ reload: { supervisor: 'alleged' }, app: APP });
      c.script('python3 - wait', { stdout: `${waitOutcome({ evidence: 'new gunicorn processes (pids 20,21,22)' })}\n` });
      await touchVassalIni().run(c);
      const load = JSON.stringify({ chdir: '/home/alleged/Sites/alleged', home: '/home/alleged/virtualenvs/alleged', env: [], pythonpath: [], module: 'alleged.wsgi', callable: 'application' });
      expect(c.recorder.lines).toEqual([
        'python3 - snapshot --program gunicorn',
        'supervisorctl restart alleged',
        `python3 - wait --program gunicorn --log-offset 0 --procs 10:500:1,11:600:10 --start 1700000001.1 --socket /home/alleged/gunicorn.sock --protocol http --load '${load}' --timeout 30 --interval 0.5 --grace 5`,
      ]);
      expect(c.recorder.logs).toEqual(['alleged is back after 1.2s: new gunicorn processes (pids 20,21,22); HTTP/1.0 200 OK']);
    });

    it("a restart the supervisor reports failed still gets the explanation: the cause first, the supervisor's words last", async () => {
      const c = appContext({ reload: { supervisor: 'alleged' }, app: APP });
      c.script('supervisorctl restart alleged', { exitCode: 7, stdout: 'alleged: stopped\nalleged: ERROR (spawn error)\n' });
      const repro = { ok: false, stage: 'import', type: 'ModuleNotFoundError', message: "No module named 'missing'", frames: [{ file: '/home/alleged/Sites/alleged/alleged/wsgi.py', line: 3, name: '<module>', code: 'import missing' }], command: 'cd ...' };
      c.script('python3 - wait', {
        stdout: waitOutcome({ ok: false, kind: 'dead', reason: 'the app server is not running: no gunicorn process of uid 1001 and /home/alleged/gunicorn.sock refuses connections', probe: 'FileNotFoundError: [Errno 2] No such file or directory', evidence: null, seconds: 7.1, ini: null, repro: repro as ProbeOutcome['repro'] }),
      });
      const error = (await errorOf(touchVassalIni().run(c))) as AppNotBackError;
      const lines = error.message.split('\n');
      expect(lines[0]).toBe("alleged: the new code does not load: ModuleNotFoundError: No module named 'missing'");
      expect(lines[1]).toBe('the app server is not running: no gunicorn process of uid 1001 and /home/alleged/gunicorn.sock refuses connections (7.1s after the restart).');
      expect(lines).toContain('  File "/home/alleged/Sites/alleged/alleged/wsgi.py", line 3, in <module>');
      expect(lines.at(-1)).toBe('supervisorctl restart alleged said: alleged: stopped; alleged: ERROR (spawn error)');
      expect(error.kind).toBe('dead');
    });

    it('refuses, before anything runs, a vassal reload for an app server and a service reload with no app to check', async () => {
      const touch = scriptedContext({ site: { vars: { app: APP } } });
      const refused = await errorOf(touchVassalIni().run(touch));
      expect(refused).toBeInstanceOf(AbortError);
      expect(refused.message).toContain("alleged: reload 'touch' acts on a uWSGI vassal ini, but vars.app says this site's app server is gunicorn");
      expect(touch.recorder.lines).toEqual([]);
      const bare = scriptedContext({ site: { vars: { reload: { runit: '/etc/service/alleged' } } } });
      const unknown = await errorOf(touchVassalIni().run(bare));
      expect(unknown.message).toContain('describe it in the site\'s vars.app (program, and socket, module)');
      expect(bare.recorder.lines).toEqual([]);
    });
  });

  it('only touches under --dry-run or with verify: false', async () => {
    const dry = scriptedContext({ dryRun: true });
    await touchVassalIni().run(dry);
    expect(dry.recorder.lines).toEqual([`touch ${INI}`]);
    expect(dry.recorder.logs).toEqual(['would wait up to 30s for alleged to answer']);
    const unchecked = scriptedContext();
    await touchVassalIni({ verify: false, vassal: '/etc/uwsgi/vassals/{site}.ini' }).run(unchecked);
    expect(unchecked.recorder.lines).toEqual(['touch /etc/uwsgi/vassals/alleged.ini']);
  });
});

describe('explainReload', () => {
  const ctx = { site: 'alleged', user: 'alleged', vassal: INI, path: '/', socket: { protocol: 'uwsgi' as const, address: '/run/uwsgi/alleged.sock' } };
  const failed = (over: Partial<ProbeOutcome>) => outcomeOf({ ok: false, kind: 'no-app', reason: 'the new instance answers without an app', ...over });

  it('a SyntaxError: file and line in the headline, the line and a caret below', () => {
    const repro = { ok: false, stage: 'import' as const, type: 'SyntaxError', message: 'invalid syntax (wsgi.py, line 5)', frames: [], command: REPRO_COMMAND,
      syntax: { file: '/home/alleged/Sites/alleged/alleged/wsgi.py', line: 5, offset: 12, code: 'def broken(:' } };
    const { headline, detail } = explainReload(failed({ repro }), ctx);
    expect(headline).toBe('alleged: the new code does not load: SyntaxError: invalid syntax (wsgi.py, line 5)');
    expect(detail.slice(1, 5)).toEqual(['  File "/home/alleged/Sites/alleged/alleged/wsgi.py", line 5', '    def broken(:', '               ^', 'SyntaxError: invalid syntax (wsgi.py, line 5)']);
  });

  it("an app that loads but fails on the probed path: the view's exception and its frame", () => {
    const repro = { ok: false, loaded: true, stage: 'call' as const, type: 'ImproperlyConfigured', message: 'The SECRET_KEY setting must not be empty.', command: REPRO_COMMAND,
      frames: [{ file: '/usr/lib/python3/dist-packages/django/conf/__init__.py', line: 90, name: '__getattr__', code: 'raise ImproperlyConfigured("The SECRET_KEY setting must not be empty.")' }] };
    const { headline, detail } = explainReload(failed({ kind: 'http-500', reason: 'the new instance answers HTTP 500 (3 times)', repro }), { ...ctx, path: '/health' });
    expect(headline).toBe('alleged: the app fails on GET /health: ImproperlyConfigured: The SECRET_KEY setting must not be empty.');
    expect(detail).toContain('  File "/usr/lib/python3/dist-packages/django/conf/__init__.py", line 90, in __getattr__');
  });

  it('a vassal that died where its socket directory is not writable for it: owner, mode and the fix', () => {
    const outcome = failed({
      kind: 'dead',
      reason: 'the vassal is not running: no uWSGI process of uid 1001 and /run/uwsgi/alleged.sock refuses connections',
      probe: 'FileNotFoundError: [Errno 2] No such file or directory',
      ini: INI_FACTS,
      socketDir: { path: '/run/uwsgi', uid: 0, gid: 0, user: 'root', group: 'root', mode: '0755', writable: false },
      repro: { ok: true, loaded: true, command: REPRO_COMMAND },
    });
    const { headline, detail } = explainReload(outcome, ctx);
    expect(headline).toBe('alleged: uWSGI cannot create its socket /run/uwsgi/alleged.sock: /run/uwsgi (root:root 0755) is not writable by the vassal, alleged:uwsgi');
    expect(detail.join('\n')).toContain('Make it root:uwsgi 2775');
    expect(detail).toContain(`Reproduced as alleged, the code loads: ${REPRO_COMMAND}`);
  });

  it("a 502 through the health URL while the app runs: the socket's owner and mode", () => {
    const outcome = failed({
      kind: 'gateway',
      reason: 'the web server cannot reach the new instance (HTTP 502, 3 times)',
      probe: 'HTTP 502 from http://127.0.0.1/',
      socketFile: { path: '/run/uwsgi/alleged.sock', uid: 1001, gid: 1001, user: 'alleged', group: 'alleged', mode: '0600' },
    });
    const { headline, detail } = explainReload(outcome, { ...ctx, healthUrl: 'http://127.0.0.1/' });
    expect(headline).toBe('alleged: the web server cannot use the socket /run/uwsgi/alleged.sock (alleged:alleged 0600): HTTP 502 from http://127.0.0.1/');
    expect(detail.join('\n')).toContain('chmod-socket = 660');
  });

  it('a 502 where the socket does not exist (a gunicorn that stopped unlinked it): no permission advice, nothing listens', () => {
    const outcome = failed({
      kind: 'gateway',
      reason: 'the web server cannot reach the new instance (HTTP 502, 3 times)',
      probe: 'HTTP 502 from http://127.0.0.1/',
      socketFile: { path: '/run/shop/gunicorn.sock', error: 'No such file or directory' },
    });
    const { detail } = explainReload(outcome, { ...ctx, healthUrl: 'http://127.0.0.1/', server: 'gunicorn' });
    expect(detail.join('\n')).not.toContain('chmod-socket');
    expect(detail).toContain('There is no socket /run/shop/gunicorn.sock: gunicorn (the app server) is not listening there.');
  });

  it("a dead vassal with nothing else to go on points at the emperor's log", () => {
    const { headline, detail } = explainReload(failed({ kind: 'dead', reason: 'the vassal is not running', repro: { ok: true, loaded: true, command: REPRO_COMMAND } }), ctx);
    expect(headline).toBe('alleged: the vassal is not running after the touch');
    expect(detail.join('\n')).toContain("The emperor's log says why the vassal stopped; site users cannot read it.");
  });
});

/**
 * Runs touchVassalIni with a wait that never answers, on fake timers moved
 * `advanceMs` ahead: how long the runner let the wait run before ending it.
 * The context is made once the timers are fake, so its clock is theirs.
 */
async function hungWaitEndedAfterMs(makeContext: () => ReturnType<typeof vassalContext>, advanceMs: number): Promise<number | undefined> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  try {
    const c = makeContext();
    c.script('python3 - wait', { hang: true });
    const run = errorOf(touchVassalIni().run(c));
    await vi.advanceTimersByTimeAsync(advanceMs);
    await run;
    return c.recorder.commands.find((x) => x.line.startsWith('python3 - wait'))?.endedAfterMs;
  } finally {
    vi.useRealTimers();
  }
}
