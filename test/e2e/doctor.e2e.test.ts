// deploy doctor against the real thing: a uWSGI emperor in tyrant mode,
// nginx and OpenSSH on loopback, sites laid out as the blog post has them.
// A healthy site passes (through its admin account and without one); each
// pitfall of the stack, seeded on a site, is named by doctor with its fix,
// and doctor exits 1. Doctor writes nothing on the server.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), in a lab of
// its own so as not to disturb another lab's runs:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-doctor DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/doctor.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/doctor.e2e.test.ts
// Elsewhere it is skipped, saying why.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { refuseOtherEmperors } from '../lab/emperors.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
const OK = 'docok';
const BAD = 'docbad';
const ADMIN = 'docadmin';
const SITES = [OK, BAD] as const;
/** Removed in afterAll: the admin account's sudo rights exist only while this file runs. */
const SUDOERS = '/etc/sudoers.d/deployfile-doctor-e2e';
const RUN_MS = 60_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`deploy doctor${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let nginx: lab.Nginx | undefined;
  let removeHome: (() => void) | undefined;
  let env: NodeJS.ProcessEnv;
  const sites = {} as Record<(typeof SITES)[number], lab.DjangoSite>;
  const timings: string[] = [];

  beforeAll(async () => {
    refuseOtherEmperors();
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo('e2e-doctor', EXAMPLE);
    for (const name of [...SITES, ADMIN]) await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
    // The admin account: a user with sudo, as the deployfile's admin: names it.
    fs.writeFileSync(SUDOERS, `# Written by test/e2e/doctor.e2e.test.ts; removed when it ends.\n${ADMIN} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    await lab.run('visudo', ['-cf', SUDOERS]);
    for (const name of SITES) sites[name] = await lab.setupDjangoSite(name, { origin, settingsPackage: 'example_site' });
    sshd = await lab.startSshd();
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    await startNginx([...SITES]);
    for (const name of SITES) await lab.waitForHttp(`${nginx!.urls[name]}revision`, (body, status) => status === 200 && body === origin.initialRevision, 60_000);

    ({ env, remove: removeHome } = operatorHome(sshd, 'deployfile-e2e-doctor-home-'));
    fs.writeFileSync(path.join(origin.workDir, 'deployfile.ts'), deployfileText());
    await lab.commitAndPush(origin, 'Add deployfile.ts');
    // A real deploy, so the history records the revision doctor compares HEAD with.
    const deployed = await cli(['run', 'deploy', '-s', SITES.join(',')], 'deploy');
    expect(deployed.code, deployed.output).toBe(0);
  });

  afterAll(async () => {
    await nginx?.stop();
    await emperor?.stop();
    await sshd?.stop();
    fs.rmSync(SUDOERS, { force: true });
    removeHome?.();
    if (timings.length) console.log(`doctor timings:\n  ${timings.join('\n  ')}`);
  });

  async function startNginx(names: string[]): Promise<void> {
    nginx = await lab.startNginx(names.map((name) => ({ name, socket: lab.socketPath(name) })));
  }

  function deployfileText(): string {
    const server = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
    const vars = (name: string) => ({ settings: 'example_site', vassal: lab.vassalPath(name) });
    return `// Written by test/e2e/doctor.e2e.test.ts.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';
const server = ${JSON.stringify(server)};
export default defineDeployfile<DjangoVars>({
  sites: {
    ${OK}: { ...server, admin: '${ADMIN}', vars: ${JSON.stringify(vars(OK))} },
    ${BAD}: { ...server, admin: '${ADMIN}', vars: ${JSON.stringify(vars(BAD))} },
    // ${OK} again, with no admin account: doctor connects as the site user.
    docplain: { ...server, user: '${OK}', vars: ${JSON.stringify({ ...vars(OK), codeDir: `/home/${OK}/Sites/${OK}`, virtualenv: `/home/${OK}/virtualenvs/${OK}` })} },
  },
  tasks: { ...djangoTasks({ apps: ['pages'] }) },
});
`;
  }

  async function cli(args: string[], label: string): Promise<CliRun & { output: string }> {
    const started = performance.now();
    const result = await deploy(args, { cwd: origin.workDir, env, timeoutMs: RUN_MS });
    timings.push(`${label}: ${((performance.now() - started) / 1000).toFixed(1)}s (exit ${result.code})`);
    const output = result.stdout + result.stderr;
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== ${label}: exit ${result.code}\n${output}\n`);
    return { ...result, output };
  }

  function doctor(site: string, label: string, extra: string[] = []): Promise<CliRun & { output: string }> {
    return cli(['doctor', '-s', site, ...extra], `doctor ${label}`);
  }

  /** The failed check's line, and its fix on the line under it. */
  function expectFailure(result: CliRun & { output: string }, site: string, name: string, detail: RegExp, fix: RegExp): void {
    expect(result.code, result.output).toBe(1);
    const lines = result.output.split('\n');
    const at = lines.findIndex((line) => line.startsWith(`[${site}] ✖ fail ${name}: `) && detail.test(line));
    expect(at, `no "✖ fail ${name}" line matching ${detail} in:\n${result.output}`).toBeGreaterThanOrEqual(0);
    const fixLine = lines.slice(at + 1).find((line) => line.startsWith(`[${site}]     fix: `));
    expect(fixLine, result.output).toMatch(fix);
    // The summary names the check that failed.
    expect(result.output).toMatch(new RegExp(`${site}: \\d+ checks? failed: [^\\n]*${name}`));
  }

  /**
   * Touch the bad site's vassal as its user would (a second after the last
   * change: the emperor compares whole seconds) and wait until nginx serves
   * it again. Each case that calls it leaves the vassal stopped or without an
   * app, so a 200 comes only from the instance the touch started.
   *
   * A touch that lands while the emperor is still reloading the vassal for
   * the case's own edits can be absorbed by that reload (seen once on a
   * loaded CI host: 30 s of "no python application found" after the good ini
   * was back). An operator would touch again; so does this, up to three
   * times, and a failure shows what the emperor logged about the vassal.
   * Each wait is 30 s, not less: on a loaded 2-core CI host a graceful reload
   * once took longer than 12 s, and a touch during it restarts the reload,
   * so three quick touches never let the app finish loading (HTTP 500 to
   * the end, with a reload logged for each touch).
   */
  async function serveAgain(): Promise<void> {
    const logPath = lab.emperorLogPath();
    const before = fs.statSync(logPath).size;
    let last = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await lab.touchVassal(BAD);
      try {
        await lab.waitForHttp(`${nginx!.urls[BAD]}revision`, (_body, status) => status === 200, 30_000);
        return;
      } catch (error) {
        last = (error as Error).message;
      }
    }
    const emperorSays = fs.readFileSync(logPath, 'utf8').slice(before).split('\n').filter((line) => line.includes(`${BAD}.ini`));
    throw new Error(`${BAD} not served after three touches: ${last}\nthe emperor about ${BAD}.ini since the first touch:\n${emperorSays.join('\n')}`);
  }

  it('passes a healthy site, checked through its admin account, and writes nothing on the server', async () => {
    const history = path.join(sites[OK].user.home, '.deployfile', 'history.jsonl');
    const before = fs.readFileSync(history, 'utf8');
    const result = await doctor(OK, 'healthy (admin)');
    expect(result.code, result.output).toBe(0);
    for (const name of ['emperor', 'vassal ini owner', 'vassal ini uid/gid', 'uwsgi plugin', 'wsgi import', 'packages visible', 'socket dir', 'socket', 'nginx uwsgi_pass', 'git origin', 'git work tree', 'git revision', 'serving']) {
      expect(result.output, `no pass for ${name}`).toContain(`[${OK}] ✔ pass ${name}: `);
    }
    expect(result.output).toContain(`accepts a connection from nginx's user www-data`);
    expect(result.output).toMatch(new RegExp(`\\[${OK}\\] ✔ pass emperor: pid \\d+ \\(/usr/bin/uwsgi\\) watches ${lab.VASSAL_DIR}, in tyrant mode`));
    expect(result.output).toContain('(example_site/settings.py is settings_production.py, as deployed)');
    // Debian's python3-gi lacks pycairo: a conflict among system packages, outside REQUIREMENTS, is a warning at most.
    expect(result.output).toMatch(new RegExp(`\\[${OK}\\] (✔ pass pip check: |! warn pip check: .*outside the app's requirements)`));
    expect(result.output).not.toContain('✖ fail');
    expect(result.output).toMatch(/Checks: 1 site, 0 with failures/);
    // Read-only: no history line, no lock.
    expect(fs.readFileSync(history, 'utf8')).toBe(before);
    expect(fs.existsSync(path.join(sites[OK].user.home, '.deployfile', 'lock'))).toBe(false);
  });

  it('passes the same site without an admin account, reasoning from permissions', async () => {
    const result = await doctor('docplain', 'healthy (site user)');
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('[docplain] ✔ pass wsgi import: ');
    expect(result.output).toMatch(/\[docplain\] ✔ pass socket: .* is writable by nginx's user www-data .*from its permissions/);
    expect(result.output).not.toContain('✖ fail');
  });

  it('--json: one check event per check, and the exit code in run:end', async () => {
    const result = await doctor(OK, 'json', ['--json']);
    expect(result.code, result.stderr).toBe(0);
    const events = result.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; status?: string; name?: string; exitCode?: number });
    const checks = events.filter((event) => event.type === 'check');
    expect(checks.length).toBeGreaterThan(12);
    expect(checks.every((check) => check.status === 'pass' || check.status === 'warn')).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'run:end', exitCode: 0 });
  });

  it('names an ImportError with its traceback, and the edit on the server as a dirty work tree', async () => {
    const wsgi = path.join(sites[BAD].siteDir, 'example_site', 'wsgi.py');
    const good = fs.readFileSync(wsgi, 'utf8');
    try {
      fs.writeFileSync(wsgi, `import missing_module_xyz\n${good}`);
      const result = await doctor(BAD, 'ImportError');
      expectFailure(result, BAD, 'wsgi import', /ModuleNotFoundError: No module named 'missing_module_xyz'/, /install what is missing/);
      expect(result.output).toMatch(/File ".*wsgi\.py", line 1/);
      expectFailure(result, BAD, 'git work tree', /example_site\/wsgi\.py/, /commit them to the repository and deploy that, or discard them/);
    } finally {
      fs.writeFileSync(wsgi, good);
    }
  });

  it('names a socket directory without group uwsgi, setgid and group-write', async () => {
    const dir = path.dirname(sites[BAD].socketPath);
    const st = fs.statSync(dir);
    try {
      fs.chownSync(dir, 0, 0);
      fs.chmodSync(dir, 0o755);
      const result = await doctor(BAD, 'socket dir');
      expectFailure(result, BAD, 'socket dir', /group root, not uwsgi, no setgid bit .*not group-writable/, new RegExp(`chown root:uwsgi ${dir} && chmod 2775 ${dir}`));
    } finally {
      fs.chownSync(dir, st.uid, st.gid);
      fs.chmodSync(dir, st.mode & 0o7777);
    }
  });

  it('names an nginx without uwsgi_pass to the socket', async () => {
    try {
      await startNginx([OK]);
      const result = await doctor(BAD, 'nginx without uwsgi_pass');
      expectFailure(result, BAD, 'nginx uwsgi_pass', new RegExp(`no uwsgi_pass to unix:${sites[BAD].socketPath}`), new RegExp(`uwsgi_pass unix:${sites[BAD].socketPath};`));
    } finally {
      await startNginx([...SITES]);
    }
  });

  it('names packages in the virtualenv that the site user cannot read', async () => {
    const sitePackages = fs.readdirSync(path.join(sites[BAD].venvDir, 'lib')).map((py) => path.join(sites[BAD].venvDir, 'lib', py, 'site-packages'))[0] as string;
    const vendored = path.join(sitePackages, 'docvendor');
    try {
      // What `sudo pip install` under a umask of 077 leaves: root's, closed to the user uWSGI runs the app as.
      fs.mkdirSync(vendored, { mode: 0o700 });
      fs.writeFileSync(path.join(vendored, '__init__.py'), '');
      const result = await doctor(BAD, 'packages invisible');
      expectFailure(result, BAD, 'packages visible', new RegExp(`${vendored} \\(root:root 0700\\): not readable by ${BAD}`), new RegExp(`chown -R ${BAD}: ${vendored}`));
    } finally {
      fs.rmSync(vendored, { recursive: true, force: true });
    }
  });

  it('names a HEAD that is not the last deployed revision', async () => {
    const git = (...args: string[]) => lab.runAs(BAD, 'git', ['-C', sites[BAD].siteDir, ...args]);
    try {
      await git('checkout', '-q', 'HEAD~1');
      const result = await doctor(BAD, 'HEAD not deployed');
      expectFailure(result, BAD, 'git revision', /is not the last deployed revision/, new RegExp(`deploy run deploy -s ${BAD}`));
    } finally {
      await git('checkout', '-q', origin.branch);
    }
  });

  // The cases below stop or break the running vassal: each brings it back before the next.
  it('names a vassal ini owned by root (tyrant mode refuses uid/gid 0)', async () => {
    const ini = sites[BAD].vassalPath;
    const st = fs.statSync(ini);
    try {
      fs.chownSync(ini, 0, 0);
      const result = await doctor(BAD, 'ini owned by root');
      expectFailure(result, BAD, 'vassal ini owner', /root:root .*uid or gid 0/, new RegExp(`chown ${BAD}:uwsgi ${ini}`));
    } finally {
      fs.chownSync(ini, st.uid, st.gid);
    }
    // The emperor stopped the vassal when it saw root's ini; a touch brings it back.
    await serveAgain();
  });

  it('names a wrong callable in the vassal ini, with what the module defines', async () => {
    const ini = sites[BAD].vassalPath;
    const good = fs.readFileSync(ini, 'utf8');
    try {
      fs.writeFileSync(ini, good.replace('module = example_site.wsgi:application', 'module = example_site.wsgi:app'));
      const result = await doctor(BAD, 'wrong callable');
      expectFailure(result, BAD, 'wsgi import', /has no attribute 'app'/, /point module = in .* at it \(example_site\.wsgi:application\)/);
    } finally {
      fs.writeFileSync(ini, good);
    }
    await serveAgain();
  });

  it('names uid= inside a tyrant vassal (last: the vassal stops, and is brought back)', async () => {
    const ini = sites[BAD].vassalPath;
    const good = fs.readFileSync(ini, 'utf8');
    try {
      fs.writeFileSync(ini, `${good}uid = ${BAD}\n`);
      const result = await doctor(BAD, 'uid= in vassal');
      expectFailure(result, BAD, 'vassal ini uid/gid', new RegExp(`sets uid = ${BAD}`), /remove the uid = line/);
    } finally {
      fs.writeFileSync(ini, good);
    }
    await serveAgain();
    const again = await doctor(BAD, 'fixed again');
    expect(again.code, again.output).toBe(0);
  });
});
