// touchVassalIni against the real thing: the built `deploy` binary reloads
// the example Django site under a uWSGI emperor in tyrant mode, laid out as
// the blog post has it: the vassal has no logto, so its lines go to the
// emperor's log, which the site user cannot read. Each case checks the
// verdict and how fast it came, and that a broken reload is explained by
// its cause in the first line.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), with a lab
// of its own so as not to disturb another lab's runs:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-reload DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/reload-lab.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/reload.e2e.test.ts
// Elsewhere it is skipped, saying why.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { refuseOtherEmperors } from '../lab/emperors.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
const SITES = ['rlone', 'rltwo'] as const;
type SiteName = (typeof SITES)[number];
const ORIGIN = 'e2e-reload';
const RUN_MS = 90_000;
/** Well below touchVassalIni's 30s timeout: a verdict from evidence, not from giving up. */
const FAST_VERDICT_S = 10;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`touchVassalIni on a tyrant-mode emperor without vassal logs${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let nginx: lab.Nginx | undefined;
  let home: string | undefined;
  let project: string | undefined;
  const sites = {} as Record<SiteName, lab.DjangoSite>;
  const timings: string[] = [];
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    refuseOtherEmperors();
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo(ORIGIN, EXAMPLE);
    for (const name of SITES) {
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      sites[name] = await lab.setupDjangoSite(name, { origin, settingsPackage: 'example_site' });
    }
    sshd = await lab.startSshd();
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    nginx = await lab.startNginx(SITES.map((name) => ({ name, socket: sites[name].socketPath })));
    for (const name of SITES) await lab.waitForHttp(revisionUrl(name), (body, status) => status === 200 && body === origin.initialRevision, 60_000);

    ({ home, env } = operatorHome(sshd, 'deployfile-e2e-reload-home-'));
    // Only touchVassalIni runs: the test pulls as the site user itself, so the
    // case does not depend on the order of the other deploy steps.
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-e2e-reload-project-'));
    const target = { host: lab.LOOPBACK, port: sshd.port, identityFile: key.privateKeyPath };
    fs.writeFileSync(
      path.join(project, 'deployfile.ts'),
      `// Written by test/e2e/reload.e2e.test.ts.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';
const server = ${JSON.stringify(target)};
export default defineDeployfile<DjangoVars>({
  sites: {
    // Checked over the vassal's uWSGI socket.
    rlone: { ...server, vars: { settings: 'example_site', vassal: ${JSON.stringify(lab.vassalPath('rlone'))} } },
    // Checked through nginx.
    rltwo: { ...server, vars: { settings: 'example_site', vassal: ${JSON.stringify(lab.vassalPath('rltwo'))}, healthUrl: ${JSON.stringify(revisionUrl('rltwo'))} } },
  },
  tasks: { ...djangoTasks() },
});
`,
    );
  });

  afterAll(async () => {
    await nginx?.stop();
    await emperor?.stop();
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (project) fs.rmSync(project, { recursive: true, force: true });
    if (timings.length) console.log(`reload verdicts:\n  ${timings.join('\n  ')}`);
  });

  function revisionUrl(name: SiteName): string {
    return `${nginx!.urls[name]}revision`;
  }

  const editWsgi = (change: (text: string) => string): void => lab.editOriginFile(origin, 'example_site/wsgi.py', change);

  /** Push a change to the origin and pull it on the sites, as a deploy's pull would. */
  async function ship(message: string, edit: () => void, names: readonly SiteName[] = SITES): Promise<string> {
    edit();
    const revision = await lab.commitAndPush(origin, message);
    for (const name of names) await lab.runAs(name, 'git', ['-C', sites[name].siteDir, 'pull', '-q', '--ff-only']);
    return revision;
  }

  async function reload(label: string, names: readonly SiteName[] = SITES): Promise<CliRun & { output: string }> {
    const result = await deploy(['run', 'touchVassalIni', '--site', names.join(',')], { cwd: project, env, timeoutMs: RUN_MS });
    const output = result.stdout + result.stderr;
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== ${label}: exit ${result.code}\n${output}\n`);
    for (const name of names) timings.push(`${label} ${name}: ${verdictSeconds(output, name) ?? '?'}s (exit ${result.code})`);
    return { ...result, output };
  }

  /** Touch-to-verdict seconds the task reported for a site: "is back after 1.2s" or "(2.7s after the touch)". */
  function verdictSeconds(output: string, name: SiteName): number | undefined {
    const back = new RegExp(`\\[${name}\\] ${name} is back after ([\\d.]+)s`).exec(output);
    if (back) return Number(back[1]);
    const failed = new RegExp(`\\[${name}\\][^\\n]*\\(([\\d.]+)s after the touch\\)`).exec(output);
    return failed ? Number(failed[1]) : undefined;
  }

  function expectExit(result: CliRun & { output: string }, code: number): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  function expectFast(result: CliRun & { output: string }, name: SiteName): void {
    const seconds = verdictSeconds(result.output, name);
    expect(seconds, `no verdict time for ${name} in:\n${result.output}`).toBeDefined();
    expect(seconds!).toBeLessThan(FAST_VERDICT_S);
  }

  async function restoreGood(): Promise<void> {
    const good = fs.readFileSync(path.join(EXAMPLE, 'example_site', 'wsgi.py'), 'utf8');
    const revision = await ship('Restore wsgi.py', () => fs.writeFileSync(path.join(origin.workDir, 'example_site', 'wsgi.py'), good));
    const result = await reload('restore');
    expectExit(result, 0);
    for (const name of SITES) await lab.waitForHttp(revisionUrl(name), (b, s) => s === 200 && b === revision, 30_000);
  }

  it('a good reload: the verdict comes from the new uWSGI workers as soon as they answer, with no grace period', async () => {
    const revision = await ship('A good change', () => editWsgi((py) => `${py}\n# reloaded by the e2e test\n`));
    const result = await reload('good reload');
    expectExit(result, 0);
    for (const name of SITES) {
      expect(result.output).toMatch(new RegExp(`\\[${name}\\] ${name} is back after [\\d.]+s: new uWSGI processes \\(pids [\\d,]+\\); `));
      expectFast(result, name);
      await lab.waitForHttp(revisionUrl(name), (b, s) => s === 200 && b === revision, 30_000);
    }
    // The emperor looks at the vassal dir every few seconds; after that, the new workers answer at once.
    expect(result.output).not.toMatch(/probed after/);
  });

  it('a renamed wsgi callable: the headline names the AttributeError, reproduced as the site user; exit 1, in seconds', async () => {
    await ship('Rename the wsgi callable', () => editWsgi((py) => py.replace('application = get_wsgi_application()', 'app = get_wsgi_application()')));
    const result = await reload('broken callable');
    expectExit(result, 1);
    for (const name of SITES) {
      expect(result.output).toContain(`[${name}] ✖ touchVassalIni failed: ${name}: the new code does not load: AttributeError: module 'example_site.wsgi' has no attribute 'application'`);
      expect(result.output).toContain(
        `Reproduced as ${name}: cd ${sites[name].siteDir}; ${sites[name].venvDir}/bin/python -c 'import example_site.wsgi; example_site.wsgi.application'`,
      );
      expect(result.output).toContain('(it defines app: point module/callable in');
      expectFast(result, name);
    }
    // The emperor's log is root's here: it is not what explained it.
    expect(result.output).not.toContain('unable to load app');
    await restoreGood();
  });

  it('an ImportError only in wsgi.py: ModuleNotFoundError in the headline, its line below', async () => {
    await ship('Import a module that does not exist', () => editWsgi((py) => py.replace('import os\n', 'import os\nimport missing_module_xyz\n')));
    const result = await reload('import error', ['rlone']);
    expectExit(result, 1);
    expect(result.output).toContain("[rlone] ✖ touchVassalIni failed: rlone: the new code does not load: ModuleNotFoundError: No module named 'missing_module_xyz'");
    expect(result.output).toContain(`File "${sites.rlone.siteDir}/example_site/wsgi.py", line 3, in <module>`);
    expect(result.output).toContain('import missing_module_xyz');
    expectFast(result, 'rlone');
    await restoreGood();
  });

  it('a SyntaxError in wsgi.py: file and line in the headline', async () => {
    await ship('Break the syntax of wsgi.py', () => editWsgi((py) => py.replace('import os\n', 'import os\ndef broken(:\n')));
    const result = await reload('syntax error', ['rlone']);
    expectExit(result, 1);
    expect(result.output).toContain('[rlone] ✖ touchVassalIni failed: rlone: the new code does not load: SyntaxError: invalid syntax (wsgi.py, line 3)');
    expect(result.output).toContain(`File "${sites.rlone.siteDir}/example_site/wsgi.py", line 3`);
    expectFast(result, 'rlone');
    await restoreGood();
  });

  it('a reload still under way from an earlier touch is waited for, then the deploy touches and verifies its own', async () => {
    const revision = await ship('A change deployed right after another touch', () => editWsgi((py) => `${py}\n# deployed after an earlier touch\n`), ['rlone']);
    // Someone touched the ini a moment ago (a deploy without verify, a cron job), and that reload is
    // slow: its master is held still, so the emperor's message waits until it runs again.
    const master = lab.vassalMasterPid(emperor!, sites.rlone.user.uid);
    expect(master, 'the vassal master of rlone').toBeDefined();
    await lab.touchVassal('rlone');
    process.kill(master!, 'SIGSTOP');
    const resumed = new Promise<void>((resolve) =>
      setTimeout(() => {
        process.kill(master!, 'SIGCONT');
        resolve();
      }, 4000),
    );
    let result: CliRun & { output: string };
    try {
      result = await reload('after an earlier touch', ['rlone']);
    } finally {
      await resumed;
    }
    expectExit(result, 0);
    expect(result.output).toMatch(new RegExp(`\\[rlone\\] ${lab.vassalPath('rlone').replace(/[.]/g, '\\.')} was touched [\\d.]+s before this deploy; waited [\\d.]+s for the reload that started to finish`));
    expect(result.output).toMatch(/\[rlone\] rlone is back after [\d.]+s: new uWSGI processes/);
    await lab.waitForHttp(revisionUrl('rlone'), (b, s) => s === 200 && b === revision, 30_000);
  });

  it('a vassal ini owned by root:root: refused by the tyrant emperor, explained, not touched', async () => {
    const ini = lab.vassalPath('rlone');
    const { uid, gid } = fs.statSync(ini);
    const mtime = fs.statSync(ini).mtimeMs;
    fs.chownSync(ini, 0, 0);
    try {
      const result = await reload('ini owned by root', ['rlone']);
      expectExit(result, 1);
      expect(result.output).toContain(`[rlone] ✖ touchVassalIni failed: rlone: the uWSGI emperor (tyrant mode) will not run ${ini}: it is owned by root:root (uid/gid 0)`);
      expect(result.output).toContain(`Not touched. As root: chown rlone:uwsgi ${ini}`);
      expect(fs.statSync(ini).mtimeMs).toBe(mtime);
    } finally {
      fs.chownSync(ini, uid, gid);
    }
    // The emperor stopped the vassal when its owner changed; touching it (as root) brings it back.
    const now = new Date();
    fs.utimesSync(ini, now, now);
    await lab.waitForHttp(revisionUrl('rlone'), (_b, s) => s === 200, 30_000);
  });
});
