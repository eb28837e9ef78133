// A Django site under Apache's mod_fcgid, as a shared host runs it: the
// site's ~/public_html/<site>.fcgi started on demand by mod_fcgid through
// suexec (so as the site user), uWSGI speaking FastCGI on the socket
// mod_fcgid passes as fd 0 (Debian 12 has no flup). What this pins:
// the site is served; which reloads make new code served and how long
// each takes; a broken app is a 500 whose cause only root can read. Then
// `deploy run deploy` with vars.app and reload { fcgid } or { apache:
// 'graceful', sudo: true }: a good deploy is back and served, a broken one
// fails with its cause.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), in a lab
// of its own:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-apf DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/apf.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/stack-apache-fcgid.e2e.test.ts
// Elsewhere it is skipped, saying why.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { APACHE, SUEXEC, type ApacheFcgid, apacheConfDir, startApacheFcgid } from '../lab/apache-fcgid.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
/** afone: the entry script watched by uWSGI (touch reloads); afplain: a plain one, to show what mod_fcgid alone does with a touch. */
const SITES = ['afone', 'afplain'] as const;
type SiteName = (typeof SITES)[number];
const ORIGIN = 'e2e-apf';
/** A deploy runs the tests, pushes, pulls, pips, collects static files and waits for the reload. */
const DEPLOY_MS = 150_000;
/**
 * afone may run exactly `apachectl graceful` as root; sudo keeps
 * APACHE_CONFDIR for it, so it is the lab's Apache that restarts (without
 * it, apachectl would start /etc/apache2's on port 80).
 */
const SUDOERS = '/etc/sudoers.d/deployfile-e2e-afone';
/** Debian's: where a graceful without APACHE_CONFDIR would have started the packaged Apache. */
const SYSTEM_APACHE_PID = '/var/run/apache2/apache2.pid';

const skipReason =
  lab.labUnavailableReason() ??
  ([APACHE, SUEXEC, '/usr/lib/apache2/modules/mod_fcgid.so'].find((f) => !fs.existsSync(f)) !== undefined
    ? 'apache2, libapache2-mod-fcgid or apache2-suexec-custom is missing (run .ci/install-lab-packages)'
    : fs.existsSync(path.join(EXAMPLE, 'manage.py'))
      ? undefined
      : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`Django under Apache mod_fcgid, uWSGI as the FastCGI program, suexec${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let apache: ApacheFcgid | undefined;
  let sshd: lab.Sshd | undefined;
  let home: string | undefined;
  let env: NodeJS.ProcessEnv;
  const sites = {} as Record<SiteName, lab.DjangoSite>;
  const timings: string[] = [];

  const systemApacheAtStart = fs.existsSync(SYSTEM_APACHE_PID);
  /** apachectl makes these whatever APACHE_CONFDIR says (its defaults when envvars sets none): removed after if this run made them. */
  const apachectlDirs = ['/var/run/apache2', '/var/lock/apache2'].filter((dir) => !fs.existsSync(dir));

  beforeAll(async () => {
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo(ORIGIN, EXAMPLE);
    for (const name of SITES) {
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      sites[name] = await lab.setupDjangoSite(name, { origin, settingsPackage: 'example_site' });
      // No emperor runs in this lab: the vassal setupDjangoSite writes is not how this stack serves.
      fs.rmSync(sites[name].vassalPath, { force: true });
    }
    apache = await startApacheFcgid([
      { site: sites.afone, settingsPackage: 'example_site' },
      { site: sites.afplain, settingsPackage: 'example_site', fcgi: { touchReload: false } },
    ]);
    for (const name of SITES) await lab.waitForHttp(revisionUrl(name), (body, status) => status === 200 && body === origin.initialRevision, 60_000);
    // Points Debian's apachectl at the lab's Apache in every SSH session (sudo keeps it: see SUDOERS).
    sshd = await lab.startSshd({ extraConfig: `SetEnv APACHE_CONFDIR=${apacheConfDir()}` });
    ({ home, env } = operatorHome(sshd, 'deployfile-e2e-apf-home-'));
  }, 240_000);

  afterAll(async () => {
    await apache?.stop();
    fs.rmSync(SUDOERS, { force: true });
    // Should a graceful have missed the lab's Apache, it started the packaged one: stop what this run started.
    if (!systemApacheAtStart && fs.existsSync(SYSTEM_APACHE_PID)) await lab.run('apachectl', ['stop'], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } }).catch(() => undefined);
    for (const dir of apachectlDirs) fs.rmSync(dir, { recursive: true, force: true });
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (timings.length) console.log(`mod_fcgid reloads, command to first 200 with the new code:\n  ${timings.join('\n  ')}`);
  });

  const revisionUrl = (name: SiteName): string => `${apache!.url(name)}revision`;
  const errorLogSince = (size: number): string => fs.readFileSync(apache!.errorLog, 'utf8').slice(size);

  /** Commit a change and pull it into the site's checkout as the site user, as a deploy's pull does. */
  async function ship(name: SiteName, message: string, change: (py: string) => string): Promise<string> {
    lab.editOriginFile(origin, 'example_site/wsgi.py', change);
    const revision = await lab.commitAndPush(origin, message);
    await lab.runAs(name, 'git', ['-C', sites[name].siteDir, 'pull', '-q', '--ff-only']);
    return revision;
  }

  /**
   * Runs the reload and polls /revision until it serves `revision`; records
   * the time from the reload's start and every other answer seen meanwhile.
   */
  async function reloadAndTime(name: SiteName, label: string, reload: () => Promise<unknown>, revision: string): Promise<{ seconds: number; others: string[] }> {
    const started = performance.now();
    await reload();
    const others: string[] = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answer = await fetch(revisionUrl(name), { signal: AbortSignal.timeout(10_000), headers: { connection: 'close' } }).then(
        async (res) => ({ status: res.status, body: await res.text() }),
        (e: Error) => ({ status: 0, body: String(e.cause ?? e) }),
      );
      if (answer.status === 200 && answer.body === revision) break;
      others.push(answer.status === 200 ? 'old code' : `HTTP ${answer.status}`);
      if (Date.now() > deadline) throw new Error(`${label}: ${name} did not serve ${revision} within 30 s; saw ${others.slice(-5).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seconds = (performance.now() - started) / 1000;
    const summary = others.length ? `${others.length} answers before: ${[...new Set(others)].join(', ')}` : 'the first request';
    timings.push(`${label}: ${seconds.toFixed(2)} s (${summary})`);
    return { seconds, others };
  }

  it('serves the site from uWSGI processes mod_fcgid started through suexec as the site user; their log is root\'s', async () => {
    const pids = apache!.processes('afone');
    // uWSGI's master and its one worker.
    expect(pids.length).toBe(2);
    for (const pid of pids) expect(fs.statSync(`/proc/${pid}`).uid).toBe(sites.afone.user.uid);
    const log = fs.readFileSync(apache!.errorLog, 'utf8');
    expect(log).toContain(`mod_fcgid: server afone:${apache!.script('afone')}(`);
    // uWSGI's stderr is Apache's main error log: its startup lines are there, root:adm 0640 as on Debian.
    expect(log).toContain('uwsgi socket 0 inherited UNIX address');
    const st = fs.statSync(apache!.errorLog);
    expect(st.mode & 0o777).toBe(0o640);
    await expect(lab.runAs('afone', 'cat', [apache!.errorLog])).rejects.toThrow(/Permission denied/);
  });

  it('touching a plain entry script changes nothing: mod_fcgid keys its processes by inode, not mtime', async () => {
    const before = apache!.processes('afplain');
    const revision = await ship('afplain', 'A change a touch will not load', (py) => `${py}\n# plain touch\n`);
    await lab.runAs('afplain', 'touch', [apache!.script('afplain')]);
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const served = await lab.waitForHttp(revisionUrl('afplain'));
    expect(served.body).not.toBe(revision);
    expect(served.body).toBe(origin.initialRevision);
    expect(apache!.processes('afplain')).toEqual(before);
    // What does load it as the site user: ending its own processes (they are its own, through suexec).
    await reloadAndTime('afplain', 'plain script, site user kills its processes (pkill -u afplain uwsgi)', () => lab.runAs('afplain', 'pkill', ['-u', 'afplain', '-x', 'uwsgi']), revision);
  });

  it('touching the entry script uWSGI watches serves the new code; the master keeps its pid (it re-execs), the worker is new', async () => {
    const [master, worker] = apache!.processes('afone');
    const revision = await ship('afone', 'A change for a touch', (py) => `${py}\n# touched\n`);
    const { others } = await reloadAndTime('afone', 'touch the .fcgi (uWSGI touch-reload)', () => lab.runAs('afone', 'touch', [apache!.script('afone')]), revision);
    // Requests during the reload queue on mod_fcgid's socket, which stays open: old code or new, never an error.
    expect(others.filter((o) => o !== 'old code')).toEqual([]);
    const after = apache!.processes('afone');
    expect(after).toContain(master);
    expect(after).not.toContain(worker);
  });

  it('apachectl graceful (root) replaces every FastCGI process of every site', async () => {
    const before = [...apache!.processes('afone'), ...apache!.processes('afplain')];
    const revision = await ship('afone', 'A change for a graceful restart', (py) => `${py}\n# graceful\n`);
    await reloadAndTime('afone', 'apache2 -k graceful (as root)', () => lab.run('sh', ['-c', apache!.gracefulCommand]), revision);
    await lab.waitForHttp(revisionUrl('afplain'));
    const after = [...apache!.processes('afone'), ...apache!.processes('afplain')];
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
  });

  it('a broken app (ImportError) answers 500, and its traceback is in the error log only root can read', async () => {
    const good = fs.readFileSync(path.join(EXAMPLE, 'example_site', 'wsgi.py'), 'utf8');
    const size = fs.statSync(apache!.errorLog).size;
    await ship('afone', 'Import a module that does not exist', (py) => `import missing_module_apf\n${py}`);
    await lab.runAs('afone', 'touch', [apache!.script('afone')]);
    const broken = await lab.waitForHttp(revisionUrl('afone'), (_b, status) => status === 500, 30_000);
    expect(broken.body).toBe('Internal Server Error');
    const log = errorLogSince(size);
    expect(log).toContain("ModuleNotFoundError: No module named 'missing_module_apf'");
    expect(log).toContain('--- no python application found, check your startup logs for errors ---');

    const revision = await ship('afone', 'Restore wsgi.py', () => good);
    await reloadAndTime('afone', 'touch the .fcgi, broken app restored', () => lab.runAs('afone', 'touch', [apache!.script('afone')]), revision);
  });
  describe('deploy run deploy, reloading through the entry script', () => {
    /** The deployfile lives in the operator's checkout, as a user's does; each deploy pushes it with the code. */
    beforeAll(async () => {
      const target = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
      fs.writeFileSync(
        path.join(origin.workDir, 'deployfile.ts'),
        `// Written by test/e2e/stack-apache-fcgid.e2e.test.ts: afone under Apache mod_fcgid.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';
export default defineDeployfile<DjangoVars>({
  sites: {
    afone: { ...${JSON.stringify(target)}, vars: {
      settings: 'example_site',
      healthUrl: ${JSON.stringify(revisionUrl('afone'))},
      // mod_fcgid ignores a touch; uWSGI's master watches this script (--touch-reload) and re-execs with new workers.
      reload: process.env.APF_RELOAD === 'apache' ? { apache: 'graceful', sudo: true } : { fcgid: ${JSON.stringify(apache!.script('afone'))} },
      // suexec runs them as afone: the default user.
      app: { program: 'uwsgi', module: 'example_site.wsgi:application' },
    } },
  },
  tasks: { ...djangoTasks({ apps: ['pages'] }) },
});
`,
      );
      await lab.commitAndPush(origin, 'Add deployfile.ts');
    });

    async function deployAfone(label: string, reload: 'fcgid' | 'apache' = 'fcgid'): Promise<CliRun & { output: string }> {
      const result = await deploy(['run', 'deploy', '--site', 'afone'], { cwd: origin.workDir, env: { ...env, APF_RELOAD: reload }, timeoutMs: DEPLOY_MS });
      const output = result.stdout + result.stderr;
      if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== ${label}: exit ${result.code}\n${output}\n`);
      const seconds = /afone is back after ([\d.]+)s/.exec(output)?.[1] ?? /([\d.]+)s after the (?:touch|restart)/.exec(output)?.[1];
      timings.push(`deploy, ${label}: verdict ${seconds ?? '?'}s after the ${reload === 'fcgid' ? 'touch' : 'graceful'} (exit ${result.code})`);
      return { ...result, output };
    }

    function expectExit(result: CliRun & { output: string }, code: number): void {
      expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
    }

    /** Commit in the operator's checkout without pushing: pushing is the deploy's job. */
    async function commit(message: string, change: (py: string) => string): Promise<string> {
      lab.editOriginFile(origin, 'example_site/wsgi.py', change);
      await lab.run('git', ['add', '-A'], { cwd: origin.workDir });
      await lab.run('git', ['-c', 'user.name=deployfile lab', '-c', 'user.email=lab@deployfile.invalid', 'commit', '-q', '-m', message], { cwd: origin.workDir });
      return (await lab.run('git', ['rev-parse', 'HEAD'], { cwd: origin.workDir })).stdout.trim();
    }

    it('a good deploy touches the entry script, sees new uWSGI workers, and Apache serves the new revision', async () => {
      const revision = await commit('A change deployed through mod_fcgid', (py) => `${py}\n# deployed under mod_fcgid\n`);
      const result = await deployAfone('good');
      expectExit(result, 0);
      expect(result.output).toContain(`[afone] $ touch ${apache!.script('afone')}`);
      expect(result.output).toMatch(/\[afone\] afone is back after [\d.]+s: new uWSGI processes \(pids \d+\); HTTP 200 from http:\/\/127\.0\.0\.1:\d+\/revision/);
      const served = await lab.waitForHttp(revisionUrl('afone'), (b, s) => s === 200 && b === revision, 30_000);
      expect(served.body).toBe(revision);
    });

    it('a broken deploy (ImportError) fails with the cause first, exit 1; the next good one is served', async () => {
      const good = fs.readFileSync(path.join(origin.workDir, 'example_site', 'wsgi.py'), 'utf8');
      await commit('Import a module that does not exist', (py) => `import missing_module_apf\n${py}`);
      const result = await deployAfone('ImportError');
      expectExit(result, 1);
      expect(result.output).toContain("ModuleNotFoundError: No module named 'missing_module_apf'");
      expect(result.output).not.toContain('afone is back after');
      const broken = await lab.waitForHttp(revisionUrl('afone'), (_b, s) => s === 500, 10_000);
      expect(broken.body).toBe('Internal Server Error');

      const revision = await commit('Restore wsgi.py', () => good);
      expectExit(await deployAfone('restored'), 0);
      await lab.waitForHttp(revisionUrl('afone'), (b, s) => s === 200 && b === revision, 30_000);
    });

    it("reload { apache: 'graceful', sudo: true }: sudo -n apachectl graceful through a rule for exactly that; every process is new and the site is back", async () => {
      fs.writeFileSync(SUDOERS, `Defaults!/usr/sbin/apachectl env_keep += "APACHE_CONFDIR"\nafone ALL=(root) NOPASSWD: /usr/sbin/apachectl graceful\n`, { mode: 0o440 });
      const before = apache!.processes('afone');
      const revision = await commit('A change deployed with a graceful restart', (py) => `${py}\n# deployed with apachectl graceful\n`);
      const result = await deployAfone('apachectl graceful', 'apache');
      expectExit(result, 0);
      // The label leaves sudo -n out; the command runs through it (the rule above is the only way afone may).
      expect(result.output).toContain('[afone] $ sudo -n apachectl graceful');
      // mod_fcgid starts the app again only at a request: the check asks healthUrl once the old processes are gone.
      expect(result.output).toMatch(/\[afone\] afone is back after [\d.]+s: the old uWSGI processes are gone and none runs yet \(started on demand\?\); probed http:\/\/127\.0\.0\.1:\d+\/revision after 5s; HTTP 200 from/);
      await lab.waitForHttp(revisionUrl('afone'), (b, s) => s === 200 && b === revision, 30_000);
      expect(apache!.processes('afone').filter((pid) => before.includes(pid))).toEqual([]);
      expect(fs.existsSync(SYSTEM_APACHE_PID), 'apachectl started the packaged Apache').toBe(systemApacheAtStart);
    });
  });
});
