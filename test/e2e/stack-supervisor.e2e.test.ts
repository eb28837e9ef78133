// The gunicorn-under-supervisor stack, as an operator runs it: Debian's
// gunicorn, one supervisord program per site running as the site user, nginx
// proxy_pass to each gunicorn's unix socket, and a sudoers line per site for
// `supervisorctl restart <site>`. What a site user sees when they restart by
// hand: the new code served after a gap, and a broken app ending in 502s.
// Then `deploy run deploy` over OpenSSH with `reload: { supervisor }` and
// `app: { program: 'gunicorn' }`: a good deploy is served and verified, a
// broken one fails naming its cause.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), with a lab
// of its own:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-sup DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/sup.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/stack-supervisor.e2e.test.ts
// Elsewhere it is skipped, saying why.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import * as lab from '../lab/lab.ts';
import { describeRequestLoop, startRequestLoop } from '../lab/request-loop.ts';
import { operatorHome, type OperatorHome } from '../lab/operator-home.ts';
import * as sup from '../lab/supervisor.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
/** gsone: supervisor's defaults (startsecs=1); gstwo: startsecs=10, above gunicorn's boot time. */
const SITES = ['gsone', 'gstwo'] as const;
type SiteName = (typeof SITES)[number];
const STARTSECS: Record<SiteName, number | undefined> = { gsone: undefined, gstwo: 10 };
/** A deploy runs the tests, pushes, pulls, pips, collects static files and waits for the restart. */
const DEPLOY_MS = 180_000;

const skipReason =
  lab.labUnavailableReason() ??
  ([sup.SUPERVISORD, sup.SUPERVISORCTL, sup.GUNICORN, '/usr/bin/sudo'].filter((f) => !fs.existsSync(f)).map((f) => `missing ${f} (run .ci/install-lab-packages)`)[0] ||
    (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`));

describe.skipIf(skipReason !== undefined)(`gunicorn under supervisor, behind nginx${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let supervisor: sup.Supervisor | undefined;
  let nginx: lab.Nginx | undefined;
  let sshd: lab.Sshd | undefined;
  let operator: OperatorHome | undefined;
  let key: lab.OperatorKey;
  const origins = {} as Record<SiteName, lab.OriginRepo>;
  const sites = {} as Record<SiteName, lab.DjangoSite>;
  const measurements: string[] = [];

  beforeAll(async () => {
    key = await lab.createOperatorKey();
    for (const name of SITES) {
      origins[name] = await lab.createOriginRepo(`${name}-origin`, EXAMPLE);
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      sites[name] = await lab.setupDjangoSite(name, { origin: origins[name], settingsPackage: 'example_site' });
    }
    supervisor = await sup.startSupervisor(SITES.map((name) => ({ site: sites[name], startsecs: STARTSECS[name] })));
    nginx = await lab.startNginx(SITES.map((name) => ({ name, upstream: { proxy: supervisor!.programs[name]!.proxy } })));
    for (const name of SITES) await served(name, origins[name].initialRevision, 60_000);
    sshd = await lab.startSshd();
    operator = operatorHome(sshd, 'deployfile-e2e-sup-home-');
  }, 240_000);

  afterAll(async () => {
    await nginx?.stop();
    await supervisor?.stop();
    await sshd?.stop();
    operator?.remove();
    if (measurements.length) console.log(`gunicorn under supervisor, measured:\n  ${measurements.join('\n  ')}`);
  });

  const revisionUrl = (name: SiteName) => `${nginx!.urls[name]}revision`;
  const served = (name: SiteName, revision: string, timeoutMs = 30_000) => lab.waitForHttp(revisionUrl(name), (b, s) => s === 200 && b === revision, timeoutMs);

  /** One GET of /revision through nginx: its status and body (status 0: no answer). */
  async function answer(name: SiteName): Promise<{ status: number; body: string }> {
    try {
      const res = await fetch(revisionUrl(name), { signal: AbortSignal.timeout(5_000), headers: { connection: 'close' } });
      return { status: res.status, body: await res.text() };
    } catch {
      return { status: 0, body: '' };
    }
  }
  const statusOf = async (name: SiteName) => (await answer(name)).status;

  /** Commit an edit of wsgi.py to the site's origin and pull it into the site's checkout as the site user. */
  async function ship(name: SiteName, message: string, change: (py: string) => string): Promise<string> {
    lab.editOriginFile(origins[name], 'example_site/wsgi.py', change);
    const revision = await lab.commitAndPush(origins[name], message);
    await lab.runAs(name, 'git', ['-C', sites[name].siteDir, 'pull', '-q', '--ff-only']);
    return revision;
  }

  /** The site user's own restart, through its sudoers line; never throws. */
  async function restartAs(user: SiteName, program: SiteName = user): Promise<{ code: number; output: string; ms: number }> {
    const t0 = Date.now();
    const [cmd, ...args] = ['sudo', '-n', ...sup.restartArgv(program)];
    return lab.runAs(user, cmd!, args).then(
      ({ stdout, stderr }) => ({ code: 0, output: stdout + stderr, ms: Date.now() - t0 }),
      (e: { stdout?: string; stderr?: string; cause?: { code?: unknown } }) => ({
        code: typeof e.cause?.code === 'number' ? e.cause.code : -1,
        output: (e.stdout ?? '') + (e.stderr ?? ''),
        ms: Date.now() - t0,
      }),
    );
  }

  function parentOf(pid: number): number {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }

  /** The site user's gunicorn processes (master and workers): the site's venv python running Debian's gunicorn. */
  function gunicornPids(name: SiteName): number[] {
    const uid = sites[name].user.uid;
    return fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
          return fs.statSync(`/proc/${d}`).uid === uid && argv[1] === sup.GUNICORN && lab.isAlive(Number(d));
        } catch {
          return false;
        }
      })
      .map(Number);
  }

  const good = fs.readFileSync(path.join(EXAMPLE, 'example_site', 'wsgi.py'), 'utf8');

  it('serves each site through nginx from its own gunicorn, run by supervisord as the site user', async () => {
    for (const name of SITES) {
      expect((await lab.waitForHttp(revisionUrl(name))).body).toBe(origins[name].initialRevision);
      expect(await supervisor!.state(name)).toBe('RUNNING');
      const pids = gunicornPids(name);
      expect(pids.length, `${name}: a master and 2 workers`).toBe(3);
    }
  });

  it('a restart by the site user (sudo supervisorctl restart) starts new gunicorn processes, which serve the new code', async () => {
    const before = gunicornPids('gsone');
    const revision = await ship('gsone', 'A change to serve after a restart', (py) => `${py}\n# restarted by hand\n`);
    // The old processes loaded the old checkout and keep serving it until the restart.
    expect((await lab.waitForHttp(revisionUrl('gsone'))).body).toBe(origins.gsone.initialRevision);

    // A bounded loop through nginx while the restart runs: which answers, and when the new code is first served.
    const t0 = Date.now();
    let firstNew: number | undefined;
    const seen: number[] = [];
    let restarting = true;
    const loop = (async () => {
      while ((restarting || firstNew === undefined) && Date.now() - t0 < 60_000) {
        const { status, body } = await answer('gsone');
        seen.push(status);
        if (status === 200 && body === revision && firstNew === undefined) firstNew = Date.now() - t0;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const result = await restartAs('gsone');
    restarting = false;
    await loop;
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('gsone: stopped');
    expect(result.output).toContain('gsone: started');
    await served('gsone', revision);
    const after = gunicornPids('gsone');
    expect(after.length).toBe(3);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    const failed = seen.filter((s) => s !== 200).length;
    measurements.push(
      `restart (startsecs=1): supervisorctl returned after ${(result.ms / 1000).toFixed(1)}s; first 200 with the new revision ${((firstNew ?? NaN) / 1000).toFixed(1)}s after the restart began; ` +
        `${failed} of ${seen.length} requests (every 50 ms) not 200 (${[...new Set(seen)].join('/')})`,
    );
    expect(seen.length).toBeGreaterThan(0);
  });

  it('the sudoers line lets a site user restart its own program only', async () => {
    const refused = await restartAs('gsone', 'gstwo');
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('sudo: a password is required');
    // And the control socket is root's, so supervisorctl without sudo is refused too.
    const direct = await lab.runAs('gsone', sup.SUPERVISORCTL, ['-c', supervisor!.conf, 'status']).then(
      (r) => r.stdout + r.stderr,
      (e: { stdout?: string; stderr?: string }) => (e.stdout ?? '') + (e.stderr ?? ''),
    );
    expect(direct).toMatch(/Permission denied/);
  });

  it('a broken app (ModuleNotFoundError) with default startsecs: nginx answers 502, and the restart\'s exit status depends on how long the failing boot takes', async () => {
    await ship('gsone', 'Import a module that does not exist', (py) => py.replace('import os\n', 'import os\nimport missing\n'));
    try {
      const logFrom = fs.statSync(supervisor!.logPath).size;
      const result = await restartAs('gsone');
      // supervisord's own account since the restart: each start of the program and each exit.
      const since = () => fs.readFileSync(supervisor!.logPath, 'utf8').slice(logFrom);
      const spawns = () => since().split("spawned: 'gsone'").length - 1;

      const states = new Set<string>();
      const statuses = new Set<number>();
      const t0 = Date.now();
      // At least 12 s of watching; with a restart that said "started", until supervisord has started it again twice.
      while (Date.now() - t0 < 12_000 || (result.code === 0 && spawns() < 3 && Date.now() - t0 < 60_000)) {
        states.add(await supervisor!.state('gsone'));
        statuses.add(await statusOf('gsone'));
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(statuses.has(200), `statuses seen: ${[...statuses].join(', ')}`).toBe(false);
      expect(statuses.has(502)).toBe(true);
      if (result.code === 0) {
        // The master outlived startsecs=1 before "Worker failed to boot" (1.5-2 s on a loaded 2-CPU machine):
        // supervisord called it started, and autorestart=unexpected starts it again after each exit 3, forever.
        expect(result.output).toContain('gsone: started');
        expect(since()).toContain('exited: gsone (exit status 3; not expected)');
        expect(spawns(), `supervisord's log since the restart:\n${since()}`).toBeGreaterThanOrEqual(3);
        expect(states.has('FATAL'), `states seen: ${[...states].join(', ')}`).toBe(false);
      } else {
        // A faster machine: it exited within startsecs, a spawn error like gstwo's below.
        expect(result.output).toContain('gsone: ERROR (spawn error)');
      }
      const log = await supervisor!.stderrTail('gsone', 20_000);
      expect(log).toContain("ModuleNotFoundError: No module named 'missing'");
      expect(log).toContain('Reason: Worker failed to boot.');
      measurements.push(`broken app, startsecs=1: restart exit ${result.code} after ${(result.ms / 1000).toFixed(1)}s; states seen: ${[...states].join(', ')}; ${spawns()} starts in ${((Date.now() - t0) / 1000).toFixed(0)}s`);

      // Where that traceback is: supervisord's AUTO child log, root's and 0600; the site user cannot read it.
      const stderrLog = fs.readdirSync(supervisor!.logDir).find((f) => f.startsWith('gsone-stderr---supervisor-'));
      expect(stderrLog).toBeDefined();
      const st = fs.statSync(path.join(supervisor!.logDir, stderrLog!));
      expect([st.uid, st.mode & 0o777]).toEqual([0, 0o600]);
      await expect(lab.runAs('gsone', 'cat', [path.join(supervisor!.logDir, stderrLog!)])).rejects.toThrow(/Permission denied/);
    } finally {
      const revision = await ship('gsone', 'Restore wsgi.py', () => good);
      expect((await restartAs('gsone')).code).toBe(0);
      await served('gsone', revision, 60_000);
    }
  });

  it('a broken app with startsecs above the boot time: the restart fails (spawn error), supervisord gives up (FATAL), nginx answers 502', async () => {
    await ship('gstwo', 'Import a module that does not exist', (py) => py.replace('import os\n', 'import os\nimport missing\n'));
    try {
      const result = await restartAs('gstwo');
      expect(result.code, result.output).not.toBe(0);
      expect(result.output).toContain('gstwo: ERROR (spawn error)');
      const t0 = Date.now();
      await supervisor!.waitForState('gstwo', 'FATAL', 60_000);
      measurements.push(`broken app, startsecs=10: restart exit ${result.code} after ${(result.ms / 1000).toFixed(1)}s, FATAL ${((Date.now() - t0 + result.ms) / 1000).toFixed(1)}s after the restart began`);
      expect((await supervisor!.ctl(['status', 'gstwo'])).output).toContain('Exited too quickly');
      expect(await statusOf('gstwo')).toBe(502);
      expect(gunicornPids('gstwo')).toEqual([]);
      expect(await supervisor!.stderrTail('gstwo', 20_000)).toContain("ModuleNotFoundError: No module named 'missing'");
    } finally {
      const revision = await ship('gstwo', 'Restore wsgi.py', () => good);
      // From FATAL, restart is a plain start (its stop says "not running").
      const back = await restartAs('gstwo');
      expect(back.code, back.output).toBe(0);
      await served('gstwo', revision, 60_000);
      measurements.push(`restart (startsecs=10) from FATAL: supervisorctl returned after ${(back.ms / 1000).toFixed(1)}s`);
    }
  });

  describe('deploy run deploy, reload: { supervisor } and app: { program: gunicorn }', () => {
    /** The operator's checkout of gsone (the origin's work clone) holds the deployfile, as users commit it. */
    const checkout = () => origins.gsone.workDir;

    beforeAll(async () => {
      const target = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
      const vars = {
        settings: 'example_site',
        healthUrl: revisionUrl('gsone'),
        // The command the site's sudoers line allows: sudo -n supervisorctl -c <conf> restart gsone.
        reload: { supervisor: 'gsone', config: supervisor!.conf, sudo: true },
        app: { program: 'gunicorn', socket: supervisor!.programs.gsone!.socketPath, module: 'example_site.wsgi:application' },
      };
      fs.writeFileSync(
        path.join(checkout(), 'deployfile.ts'),
        `// Written by test/e2e/stack-supervisor.e2e.test.ts: gunicorn under supervisord, behind nginx.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';

const vars = ${JSON.stringify(vars, null, 2)};
// RELOAD_SIGNAL=HUP: the graceful reload (supervisorctl signal HUP) instead of the restart.
const reload = { ...vars.reload, ...(process.env.RELOAD_SIGNAL ? { signal: process.env.RELOAD_SIGNAL } : {}) };

export default defineDeployfile<DjangoVars>({
  sites: {
    gsone: { ...${JSON.stringify(target)}, vars: { ...vars, reload } },
  },
  tasks: { ...djangoTasks({ apps: ['pages'] }) },
});
`,
      );
      await commit('Add deployfile.ts', () => undefined);
    });

    async function git(...args: string[]): Promise<string> {
      return (await lab.run('git', args, { cwd: checkout() })).stdout.trim();
    }

    /** Commit in the operator's checkout, without pushing: pushing is the deploy's job. */
    async function commit(message: string, edit: () => void): Promise<string> {
      edit();
      await git('add', '-A');
      await git('commit', '-q', '--allow-empty', '-m', message);
      return git('rev-parse', 'HEAD');
    }

    const editWsgi = (change: (py: string) => string) => lab.editOriginFile(origins.gsone, 'example_site/wsgi.py', change);

    async function run(label: string, env: Record<string, string> = {}): Promise<CliRun & { output: string }> {
      const t0 = Date.now();
      const result = await deploy(['run', 'deploy', '--site', 'gsone'], { cwd: checkout(), env: { ...operator!.env, ...env }, timeoutMs: DEPLOY_MS });
      const output = result.stdout + result.stderr;
      // DEPLOYFILE_E2E_OUTPUT=file keeps every run's output, to read what a user would have seen.
      if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== ${label}: exit ${result.code}\n${output}\n`);
      const back = /gsone is back after ([\d.]+)s/.exec(output)?.[1];
      measurements.push(`deploy, ${label}: exit ${result.code} after ${((Date.now() - t0) / 1000).toFixed(1)}s${back ? `, "is back after ${back}s"` : ''}`);
      return { ...result, output };
    }

    function expectExit(result: CliRun & { output: string }, code: number): void {
      expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
    }

    it('a good deploy restarts gunicorn through supervisorctl, is verified through nginx, and serves the new revision', async () => {
      const before = gunicornPids('gsone');
      const revision = await commit('A change to deploy through supervisor', () => editWsgi((py) => `${py}\n# deployed through supervisor\n`));

      // A bounded loop through nginx for as long as the deploy runs: what its restart costs in failed requests.
      const loop = startRequestLoop(revisionUrl('gsone'));
      const result = await run('good');
      const requests = await loop.stop();

      expectExit(result, 0);
      expect(result.output).toContain('[gsone] $ sudo -n supervisorctl restart gsone');
      expect(result.output).toMatch(/\[gsone\] gsone is back after [\d.]+s: new gunicorn processes \(pids [\d,]+\); HTTP 200 from http:/);
      await served('gsone', revision);
      expect(gunicornPids('gsone').filter((pid) => before.includes(pid))).toEqual([]);
      measurements.push(`deploy, good: ${describeRequestLoop(requests)} through nginx (every 50 ms during the deploy)`);
      expect(requests.total).toBeGreaterThan(0);
    });

    it("reload { supervisor, signal: 'HUP' }: gunicorn replaces its workers while its master and socket stay up, and the new revision is served", async () => {
      const before = gunicornPids('gsone');
      const master = before.find((pid) => !before.includes(parentOf(pid)));
      expect(master, `no gunicorn master among ${before.join(',')}`).toBeDefined();
      const revision = await commit('A change to deploy with a graceful HUP', () => editWsgi((py) => `${py}\n# deployed with HUP\n`));
      const loop = startRequestLoop(revisionUrl('gsone'));
      const result = await run('good, HUP', { RELOAD_SIGNAL: 'HUP' });
      const requests = await loop.stop();
      expectExit(result, 0);
      expect(result.output).toContain('[gsone] $ sudo -n supervisorctl signal HUP gsone');
      expect(result.output).toMatch(/\[gsone\] gsone is back after [\d.]+s: new gunicorn processes \(pids [\d,]+\); HTTP 200 from http:/);
      await served('gsone', revision);
      const after = gunicornPids('gsone');
      expect(after).toContain(master);
      expect(after.filter((pid) => pid !== master && before.includes(pid))).toEqual([]);
      measurements.push(`deploy, good with HUP: ${describeRequestLoop(requests)} through nginx during the deploy`);
      expect(requests.total).toBeGreaterThan(0);
    });

    it('a deploy of code that does not import fails, naming the cause (ModuleNotFoundError), exit 1; fixing it and deploying again serves the fix', async () => {
      await commit('Import a module that does not exist', () => editWsgi((py) => py.replace('import os\n', 'import os\nimport missing\n')));
      try {
        const result = await run('broken (ModuleNotFoundError)');
        expectExit(result, 1);
        expect(result.output).toContain("[gsone] ✖ touchVassalIni failed: gsone: the new code does not load: ModuleNotFoundError: No module named 'missing'");
        expect(await statusOf('gsone')).toBe(502);
      } finally {
        const fixed = await commit('Restore wsgi.py', () => editWsgi(() => good));
        const again = await run('fixed');
        expectExit(again, 0);
        await served('gsone', fixed);
      }
    });
  });
});
