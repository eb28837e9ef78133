// The FastCGI + daemontools stack (test/lab/daemontools.ts): nginx's
// fastcgi_pass to uWSGI's --fastcgi-socket, started by a daemontools `run`
// script as the site user, restarted by the site user with `svc -t`; and the
// same under runit (runsvdir, `sv restart`).
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), with a lab
// of its own:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-dmt DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/dmt.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/stack-daemontools.e2e.test.ts
// Elsewhere it is skipped, saying why.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import * as dt from '../lab/daemontools.ts';
import * as lab from '../lab/lab.ts';
import { describeRequestLoop, startRequestLoop } from '../lab/request-loop.ts';
import { operatorHome, type OperatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
const ORIGIN = 'e2e-daemontools';
/** A deploy runs the tests, pushes, pulls, collects static files and waits for the restart. */
const DEPLOY_MS = 150_000;

/** How each suite is driven: its scanner, and the site user's restart and status commands. */
const SUITES = {
  daemontools: { site: 'dtone', reload: (dir: string) => ({ daemontools: dir }), scanner: dt.SVSCAN, start: dt.startSvscan, restart: (dir: string) => [dt.SVC, '-t', dir], status: (dir: string) => ['svstat', dir], up: /: up \(pid \d+\) \d+ seconds/ },
  runit: { site: 'dttwo', reload: (dir: string) => ({ runit: dir }), scanner: dt.RUNSVDIR, start: dt.startRunsvdir, restart: (dir: string) => [dt.SV, 'restart', dir], status: (dir: string) => [dt.SV, 'status', dir], up: /^run: .*: \(pid \d+\) \d+s/ },
} as const;

const skipReasonFor = (scanner: string): string | undefined =>
  lab.labUnavailableReason() ??
  (!fs.existsSync(scanner) ? `${scanner} is missing (run .ci/install-lab-packages)` : undefined) ??
  (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.each(Object.entries(SUITES).map(([suite, s]) => ({ toString: () => suite, suite, ...s, skipReason: skipReasonFor(s.scanner) })))('a Django site over FastCGI, supervised by %s', ({ suite, site: SITE, reload, start, restart: restartArgv, status: statusArgv, up, skipReason }) => {
  if (skipReason !== undefined) {
    it.skip(`skipped: ${skipReason}`, () => undefined);
    return;
  }
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let site: lab.DjangoSite;
  let svscan: dt.Svscan | undefined;
  let nginx: lab.Nginx | undefined;
  let sshd: lab.Sshd | undefined;
  let operator: OperatorHome | undefined;
  const timings: string[] = [];

  beforeAll(async () => {
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo(ORIGIN, EXAMPLE);
    await lab.createSiteUser(SITE, { authorizedKeys: [key.publicKey] });
    site = await lab.setupDjangoSite(SITE, { origin, settingsPackage: 'example_site' });
    // daemontools runs this site, not an emperor: no vassal left for one to find.
    fs.rmSync(site.vassalPath, { force: true });
    svscan = await start([{ site, settingsPackage: 'example_site' }]);
    nginx = await lab.startNginx([{ name: SITE, socket: svscan.sites[SITE]!.socket, protocol: 'fastcgi' }]);
    await lab.waitForHttp(url('revision'), (body, status) => status === 200 && body === origin.initialRevision, 60_000);
    sshd = await lab.startSshd();
    operator = operatorHome(sshd, `deployfile-e2e-${suite}-home-`);
  }, 240_000);

  afterAll(async () => {
    await nginx?.stop();
    await svscan?.stop();
    await sshd?.stop();
    operator?.remove();
    if (timings.length) console.log(`${suite} + FastCGI timings:\n  ${timings.join('\n  ')}`);
  });

  const url = (p = ''): string => `${nginx!.urls[SITE]}${p}`;
  const serviceDir = (): string => svscan!.serviceDir(SITE);

  /** `svc -t` (runit: `sv restart`) as the site user, through the control FIFO it owns. */
  const restart = () => {
    const [cmd, ...args] = restartArgv(serviceDir());
    return lab.runAs(SITE, cmd!, args);
  };
  const svStatus = async (): Promise<string> => {
    const [cmd, ...args] = statusArgv(serviceDir());
    return (await lab.runAs(SITE, cmd!, args)).stdout;
  };

  /** Edits a file of the site's checkout as the site user, as someone fixing things on the server would. */
  async function editCheckout(file: string, change: (text: string) => string): Promise<void> {
    const full = path.join(site.siteDir, file);
    const after = change(fs.readFileSync(full, 'utf8'));
    await lab.runAs(SITE, 'tee', [full], { input: after });
  }

  async function status(p: string): Promise<{ status: number; body: string } | string> {
    try {
      const res = await fetch(url(p), { signal: AbortSignal.timeout(5_000), headers: { connection: 'close' } });
      return { status: res.status, body: await res.text() };
    } catch (e) {
      return String((e as Error).cause ?? e);
    }
  }

  /**
   * Polls every 20 ms from `since` until the predicate holds: the
   * milliseconds it took and what nginx answered meanwhile (status or error, counted).
   */
  async function until(since: number, p: string, pred: (r: { status: number; body: string }) => boolean, timeoutMs = 30_000): Promise<{ ms: number; seen: string }> {
    let last: unknown;
    const seen = new Map<string, number>();
    while (Date.now() - since < timeoutMs) {
      const r = await status(p);
      if (typeof r !== 'string' && pred(r)) return { ms: Date.now() - since, seen: [...seen].map(([k, n]) => `${k} x${n}`).join(', ') || 'nothing else' };
      const k = typeof r === 'string' ? r.replace(/^Error: /, '').slice(0, 60) : `${r.status}${r.status === 200 ? ' (old code)' : ''}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
      last = r;
      await sleep(20);
    }
    throw new Error(`${url(p)}: not as expected ${timeoutMs} ms after the restart; last: ${JSON.stringify(last)}`);
  }

  it('serves the site through nginx fastcgi_pass, from uWSGI processes of the site user, and logs to a file the site user reads', async () => {
    const r = await status('revision');
    expect(r).toEqual({ status: 200, body: origin.initialRevision });
    const uid = site.user.uid;
    const pids = dt.appPids(site.user);
    expect(pids.length).toBe(3); // master + 2 workers
    for (const pid of pids) expect(fs.statSync(`/proc/${pid}`).uid).toBe(uid);
    const { stdout } = await lab.runAs(SITE, 'cat', [path.join(svscan!.logDir(SITE), 'current')]);
    expect(stdout).toContain('uwsgi socket 0 bound to TCP address');
    expect(await svStatus()).toMatch(up);
  });

  it('a restart as the site user brings new uWSGI processes, which serve the edited checkout', async () => {
    const before = dt.appPids(site.user);
    await editCheckout('pages/views.py', (py) => py.replace('return HttpResponse(_revision(),', "return HttpResponse(_revision() + ' edited',"));
    // Not asserted that the old code is still served here: Django imports the
    // views on a worker's first request, so a worker that has served nothing
    // yet picks the edit up without any restart.
    // For the same reason the first 200 with the edit can come before the
    // restart has replaced anything (CI once saw it 123 ms after `svc -t`):
    // wait for a full set of new processes first, then ask them.
    const t0 = Date.now();
    await restart();
    let after = dt.appPids(site.user);
    while ((after.length !== 3 || after.some((p) => before.includes(p))) && Date.now() - t0 < 30_000) {
      await sleep(50);
      after = dt.appPids(site.user);
    }
    expect(after.length).toBe(3);
    expect(after.filter((p) => before.includes(p))).toEqual([]);
    const { ms, seen } = await until(t0, 'revision', (r) => r.status === 200 && r.body === `${origin.initialRevision} edited`);
    timings.push(`restart to new processes serving the new code: ${ms} ms; nginx answered meanwhile: ${seen}`);
  });

  it('a checkout that does not import is seen: nginx answers 500 and the log says why; restoring it and restarting serves again', async () => {
    await editCheckout('example_site/wsgi.py', (py) => `import missing_module_dmt\n${py}`);
    const t0 = Date.now();
    await restart();
    const broken = await until(t0, 'revision', (r) => r.status === 500);
    timings.push(`restart of a broken checkout to the first 500: ${broken.ms} ms; before it: ${broken.seen}`);
    // Still up: supervise restarts nothing, uWSGI runs without an app.
    expect(await svStatus()).toMatch(up);
    const { stdout: log } = await lab.runAs(SITE, 'cat', [path.join(svscan!.logDir(SITE), 'current')]);
    expect(log).toContain("ModuleNotFoundError: No module named 'missing_module_dmt'");
    expect(log).toContain('no python application found');

    await lab.runAs(SITE, 'git', ['-C', site.siteDir, 'checkout', '--', 'example_site/wsgi.py']);
    const t1 = Date.now();
    await restart();
    const fixed = await until(t1, 'revision', (r) => r.status === 200);
    timings.push(`restart after a fix to the first 200: ${fixed.ms} ms; nginx answered meanwhile: ${fixed.seen}`);
  });

  describe('deploy run deploy, with vars.reload and vars.app', () => {
    beforeAll(async () => {
      // The checkout back as the origin has it (the edits above), so the deploys pull cleanly.
      await lab.runAs(SITE, 'git', ['-C', site.siteDir, 'checkout', '--', '.']);
      const target = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
      const vars = {
        settings: 'example_site',
        healthUrl: url('revision'),
        reload: reload(serviceDir()),
        // log: what multilog / svlogd write, the site user's to read.
        app: { program: 'uwsgi', socket: svscan!.sites[SITE]!.socket, protocol: 'fastcgi', module: 'example_site.wsgi:application', log: path.join(svscan!.logDir(SITE), 'current') },
      };
      fs.writeFileSync(
        path.join(origin.workDir, 'deployfile.ts'),
        `// Written by test/e2e/stack-daemontools.e2e.test.ts: uWSGI over FastCGI under ${suite}.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';

export default defineDeployfile<DjangoVars>({
  sites: { ${SITE}: { ...${JSON.stringify(target)}, vars: ${JSON.stringify(vars)} } },
  tasks: { ...djangoTasks({ apps: ['pages'] }) },
});
`,
      );
      await lab.commitAndPush(origin, 'Add deployfile.ts');
    });

    async function runDeploy(label: string): Promise<CliRun & { output: string }> {
      const result = await deploy(['run', 'deploy'], { cwd: origin.workDir, env: operator!.env, timeoutMs: DEPLOY_MS });
      const output = result.stdout + result.stderr;
      if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== ${suite}, ${label}: exit ${result.code}\n${output}\n`);
      timings.push(`deploy, ${label}: verdict ${new RegExp(`${SITE} is back after ([\\d.]+)s`).exec(output)?.[1] ?? '?'}s (exit ${result.code})`);
      return { ...result, output };
    }

    function expectExit(result: CliRun & { output: string }, code: number): void {
      expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
    }

    /** Commit in the operator's checkout, not pushed: pushing is the deploy's job. */
    async function commit(message: string, file: string, change: (text: string) => string): Promise<string> {
      lab.editOriginFile(origin, file, change);
      const git = (...args: string[]) => lab.run('git', args, { cwd: origin.workDir });
      await git('add', '-A');
      await git('commit', '-q', '-m', message);
      return (await git('rev-parse', 'HEAD')).stdout.trim();
    }

    it(`a good deploy restarts the service (${suite === 'daemontools' ? 'svc -t' : 'sv restart'}) and is served through nginx; requests failed meanwhile are counted`, async () => {
      const revision = await commit('Say hello on the front page', 'pages/templates/pages/index.html', (html) => html.replace('</body>', '<p id="hello">hello from the daemontools e2e test</p>\n</body>'));
      const before = dt.appPids(site.user);
      const loop = startRequestLoop(url('revision'));
      const result = await runDeploy('good');
      const counted = await loop.stop();
      timings.push(`requests through nginx during the good deploy: ${describeRequestLoop(counted)}`);
      expectExit(result, 0);
      expect(result.output).toContain(suite === 'daemontools' ? `$ svc -t ${serviceDir()}` : `$ sv restart ${serviceDir()}`);
      expect(result.output).toMatch(new RegExp(`\\[${SITE}\\] ${SITE} is back after [\\d.]+s`));
      expect(counted.total).toBeGreaterThan(0);
      const { body } = await lab.waitForHttp(url('revision'), (b, s) => s === 200 && b === revision, 30_000);
      expect(body).toBe(revision);
      expect((await lab.waitForHttp(url())).body).toContain('hello from the daemontools e2e test');
      expect(dt.appPids(site.user).filter((p) => before.includes(p))).toEqual([]);
    });

    it('a deploy whose code does not import fails with the cause in the output and exit code 1; a fixed one serves again', async () => {
      await commit('Import a module that does not exist', 'example_site/wsgi.py', (py) => `import missing_module_dmt\n${py}`);
      const result = await runDeploy('broken');
      expectExit(result, 1);
      expect(result.output).toContain("ModuleNotFoundError: No module named 'missing_module_dmt'");
      expect(result.output).not.toMatch(new RegExp(`${SITE} is back after`));
      // vars.app.log: the lines multilog / svlogd wrote since the restart are quoted.
      expect(result.output).toContain(`${path.join(svscan!.logDir(SITE), 'current')} since the restart`);
      expect(result.output).toContain("unable to load app 0 (mountpoint='')");
      expect((await status('revision')) as { status: number }).toMatchObject({ status: 500 });

      const fixed = await commit('Drop the missing import', 'example_site/wsgi.py', (py) => py.replace('import missing_module_dmt\n', ''));
      expectExit(await runDeploy('fixed'), 0);
      await lab.waitForHttp(url('revision'), (b, s) => s === 200 && b === fixed, 30_000);
    });
  });
});
