// A real deploy, end to end: the built `deploy` binary, run as a user runs it
// (no TTY, a deployfile.ts in the project checkout, its own ~/.ssh), deploys
// the example Django site with the built-in tasks over real OpenSSH to two
// Unix users, whose apps a uWSGI emperor (tyrant mode) serves behind nginx.
// Every check looks at what nginx serves, not at what the tool says.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages):
//   npx vitest run --config vitest.e2e.config.ts test/e2e
// Elsewhere it is skipped, saying why.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome } from '../lab/operator-home.ts';
import { refuseOtherEmperors } from '../lab/emperors.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
const SITES = ['alleged', 'bravo'] as const;
type SiteName = (typeof SITES)[number];
/** Named after this test so it never replaces the lab test's origins (alleged, bravo). */
const ORIGIN = 'e2e-deploy';
/** A deploy pulls, pips, collects static files and waits for two uWSGI reloads. */
const DEPLOY_MS = 150_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`deploy run deploy, for real${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let nginx: lab.Nginx | undefined;
  let home: string | undefined;
  const sites = {} as Record<SiteName, lab.DjangoSite>;
  const timings: string[] = [];

  /** The operator's environment: a clean HOME that trusts only the lab's sshd, no agent, Debian's python3 first. */
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // Before touching any vassal: another lab's emperor (another DEPLOYFILE_LAB_DIR) would reload them too.
    refuseOtherEmperors();
    key = await lab.createOperatorKey();
    // One origin for both sites: one push, two pulls, as with two sites of one project.
    origin = await lab.createOriginRepo(ORIGIN, EXAMPLE);
    for (const name of SITES) {
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      sites[name] = await lab.setupDjangoSite(name, { origin, settingsPackage: 'example_site' });
      // setupDjangoSite keeps an existing virtualenv; forget the last run's
      // installed REQUIREMENTS so the first deploy here really runs pip.
      fs.rmSync(path.join(sites[name].venvDir, '.deployfile'), { recursive: true, force: true });
    }
    // VERBOSE: sshd logs "Starting session: command ..." for every session (a site's first command opens one), so a test can tell that none ran.
    sshd = await lab.startSshd({ extraConfig: 'LogLevel VERBOSE' });
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    nginx = await lab.startNginx(SITES.map((name) => ({ name, socket: sites[name].socketPath, staticRoot: path.join(sites[name].user.home, 'static') })));
    for (const name of SITES) await lab.waitForHttp(revisionUrl(name), (body, status) => status === 200 && body === origin.initialRevision, 60_000);

    ({ home, env } = operatorHome(sshd, 'deployfile-e2e-home-'));

    // The deployfile lives in the project's checkout and is committed with it, as users do.
    fs.writeFileSync(path.join(origin.workDir, 'deployfile.ts'), deployfileText());
    await lab.commitAndPush(origin, 'Add deployfile.ts');
  });

  afterAll(async () => {
    // Only what this file started, by pid; the accounts, clones and vassals stay for the next run.
    await nginx?.stop();
    await emperor?.stop();
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (timings.length) console.log(`deploy timings:\n  ${timings.join('\n  ')}`);
  });

  function deployfileText(): string {
    const target = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
    return `// Written by test/e2e/deploy.e2e.test.ts: the lab's two sites on one sshd.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';

const server = ${JSON.stringify(target)};

export default defineDeployfile<DjangoVars>({
  sites: {
    // Reload checked over the vassal's uWSGI socket (no healthUrl).
    alleged: { ...server, vars: { settings: 'example_site' } },
    // Reload checked through nginx.
    bravo: { ...server, vars: { settings: 'example_site', healthUrl: ${JSON.stringify(revisionUrl('bravo'))} } },
  },
  tasks: { ...djangoTasks({ apps: ['pages'] }) },
});
`;
  }

  /** Sessions sshd started (a site's shared shell, or a command's own session) since the log had `from` bytes. */
  function sshSessionsSince(from: number): string[] {
    return fs
      .readFileSync(sshd!.logPath, 'utf8')
      .slice(from)
      .split('\n')
      .filter((line) => line.includes('Starting session:'));
  }

  function revisionUrl(name: SiteName): string {
    return `${nginx!.urls[name]}revision`;
  }

  async function git(...args: string[]): Promise<string> {
    return (await lab.run('git', args, { cwd: origin.workDir })).stdout.trim();
  }

  /** Commit in the operator's checkout, without pushing: pushing is the deploy's job. */
  async function commit(message: string, edit: () => void): Promise<string> {
    edit();
    await git('add', '-A');
    await git('commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  }

  function editFile(relative: string, change: (text: string) => string): void {
    const file = path.join(origin.workDir, relative);
    const before = fs.readFileSync(file, 'utf8');
    const after = change(before);
    if (after === before) throw new Error(`editing ${relative} changed nothing`);
    fs.writeFileSync(file, after);
  }

  async function run(label: string, args: string[]): Promise<CliRun & { output: string }> {
    const started = Date.now();
    const result = await deploy(args, { cwd: origin.workDir, env, timeoutMs: DEPLOY_MS });
    // DEPLOYFILE_E2E_OUTPUT=file keeps every run's output, to read what a user would have seen.
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== ${label}: exit ${result.code}\n${result.stdout}${result.stderr}\n`);
    timings.push(`${label}: ${((Date.now() - started) / 1000).toFixed(1)}s (exit ${result.code})`);
    return { ...result, output: result.stdout + result.stderr };
  }

  /** The exit code, with the whole output in the failure message: CI logs are all one gets. */
  function expectExit(result: CliRun & { output: string }, code: number): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  async function siteHead(name: SiteName): Promise<string> {
    return (await lab.runAs(name, 'git', ['-C', sites[name].siteDir, 'rev-parse', 'HEAD'])).stdout.trim();
  }

  async function originHead(): Promise<string> {
    return (await lab.run('git', ['--git-dir', origin.barePath, 'rev-parse', origin.branch])).stdout.trim();
  }

  /** Polled, not read once: a reload takes a moment, and a lost one shows up here as the old SHA. */
  async function expectServed(name: SiteName, revision: string): Promise<void> {
    const { body } = await lab.waitForHttp(revisionUrl(name), (b, status) => status === 200 && b === revision, 30_000);
    expect(body).toBe(revision);
  }

  it('deploys a new commit to both sites: through nginx both serve the new revision', async () => {
    const revision = await commit('Say hello on the front page', () =>
      editFile('pages/templates/pages/index.html', (html) => html.replace('</body>', '<p id="hello">hello from the e2e test</p>\n</body>')),
    );
    const logSize = fs.statSync(sshd!.logPath).size;
    const result = await run('first deploy, both sites', ['run', 'deploy']);
    expectExit(result, 0);
    // What the failing-tests case below relies on: sshd logs a session on every site a deploy runs anything on
    // (the site's shared shell, which runs its commands one after another; a session each for the rest).
    expect(sshSessionsSince(logSize).length).toBeGreaterThanOrEqual(SITES.length);
    expect(await originHead()).toBe(revision);
    for (const name of SITES) {
      expect(await siteHead(name)).toBe(revision);
      await expectServed(name, revision);
      const page = await lab.waitForHttp(nginx!.urls[name]!, (b, s) => s === 200 && b.includes('id="hello"'));
      expect(page.body).toContain(`<code id="revision">${revision}</code>`);
      // collectstatic ran in the virtualenv and nginx serves its output.
      const css = await fetch(`${nginx!.urls[name]}static/pages/site.css`);
      expect(css.status).toBe(200);
      // The production settings are the ones running.
      expect(fs.readFileSync(path.join(sites[name].siteDir, 'example_site', 'settings.py'), 'utf8')).toContain('DEBUG = False');
      expect(result.output).toContain(`[${name}] ${name} is back after`);
    }
    // Nothing was installed before, so pip really ran, on each site.
    expect(result.output.match(/\$ pip install -r REQUIREMENTS/g) ?? []).toHaveLength(2);
  });

  it('a code-only change skips collectstatic (its inputs are as the last collect left them); a changed stylesheet is collected and served', async () => {
    const codeOnly = await commit('A code-only change', () => editFile('pages/views.py', (py) => `${py}\n# a code-only change\n`));
    const result = await run('code-only deploy', ['run', 'deploy']);
    expectExit(result, 0);
    for (const name of SITES) {
      expect(result.output).toMatch(new RegExp(`\\[${name}\\] ↓ collectstatic skipped: static files unchanged since the last collect \\(\\d+ files in `));
      await expectServed(name, codeOnly);
    }
    const styled = await commit('A new colour', () => editFile('pages/static/pages/site.css', (css) => `${css}\nh1 { color: teal }\n`));
    const again = await run('stylesheet deploy', ['run', 'deploy']);
    expectExit(again, 0);
    for (const name of SITES) {
      expect(again.output).not.toContain(`[${name}] ↓ collectstatic skipped`);
      await expectServed(name, styled);
      const css = await fetch(`${nginx!.urls[name]}static/pages/site.css`);
      expect(await css.text()).toContain('teal');
    }
  });

  it('a failing test without a TTY or --yes: the question is answered no, nothing remote runs, exit 1, the old revision stays', async () => {
    const served = await originHead();
    const failing = await commit('A test that fails', () =>
      editFile('pages/tests.py', (py) => `${py}\n\nclass FailingTests(SimpleTestCase):\n    def test_fails(self):\n        self.fail('failing on purpose (e2e)')\n`),
    );
    const logSize = fs.statSync(sshd!.logPath).size;
    const result = await run('failing tests, no --yes', ['run', 'deploy']);
    expectExit(result, 1);
    expect(sshSessionsSince(logSize), 'commands run over SSH although the deploy stopped at the tests').toEqual([]);
    expect(result.output).toMatch(/\? Tests failed\. Continue anyway\? no/);
    expect(result.output).toContain('failing on purpose (e2e)');
    // Not pushed, not pulled on either site.
    expect(await originHead()).toBe(served);
    expect(result.output).not.toMatch(/▶ push|▶ pull|git pull/);
    for (const name of SITES) {
      expect(await siteHead(name)).toBe(served);
      await expectServed(name, served);
    }

    const yes = await run('failing tests, --yes', ['run', 'deploy', '--yes']);
    expectExit(yes, 0);
    expect(yes.output).toMatch(/\? Tests failed\. Continue anyway\? yes/);
    expect(yes.output).toContain('Tests failed; going on as asked.');
    for (const name of SITES) {
      expect(await siteHead(name)).toBe(failing);
      await expectServed(name, failing);
    }

    // Back to green for what follows (deployed with the next test's deploy).
    await commit('Drop the failing test', () => editFile('pages/tests.py', (py) => py.slice(0, py.indexOf('\n\nclass FailingTests'))));
  });

  it('a deploy with REQUIREMENTS unchanged since the last one skips pip and says so', async () => {
    const revision = await commit('Touch the README only', () => editFile('README.md', (md) => `${md}\nDeployed again by the e2e test.\n`));
    const result = await run('unchanged REQUIREMENTS', ['run', 'deploy']);
    expectExit(result, 0);
    for (const name of SITES) {
      expect(result.output).toContain(`[${name}] ↓ installRequirements skipped: requirements unchanged since last deploy`);
      await expectServed(name, revision);
    }
    expect(result.output).not.toContain('pip install');
  });

  it('a commit that changes settings.py deploys, though every deploy overwrote settings.py on the servers', async () => {
    const revision = await commit('A comment in the development settings', () =>
      editFile('example_site/settings.py', (py) => `${py}\n# Edited by the e2e test after earlier deploys.\n`),
    );
    const result = await run('settings.py changed', ['run', 'deploy']);
    expectExit(result, 0);
    for (const name of SITES) {
      expect(await siteHead(name)).toBe(revision);
      await expectServed(name, revision);
      // Still the production settings afterwards.
      expect(fs.readFileSync(path.join(sites[name].siteDir, 'example_site', 'settings.py'), 'utf8')).toContain('DEBUG = False');
    }
  });

  it("examples/custom-steps.deployfile.ts: its read-only status task runs on both sites", async () => {
    // The example as users would adapt it: its tasks, the lab's sites.
    const file = path.join(origin.workDir, 'custom-steps.deployfile.ts');
    fs.writeFileSync(
      file,
      `import { defineDeployfile } from 'deployfile';
import example from ${JSON.stringify(path.join(ROOT, 'examples', 'custom-steps.deployfile.ts'))};
import lab from './deployfile.ts';
export default defineDeployfile({ ...example, sites: lab.sites });
`,
    );
    try {
      const result = await run('custom-steps example: status', ['run', 'status', '-f', file]);
      expectExit(result, 0);
      const revision = await originHead();
      for (const name of SITES) {
        expect(result.output).toMatch(new RegExp(`\\[${name}\\]\\s+${revision} `));
        expect(result.output).toContain(`[${name}] no changes on the server besides the production settings`);
      }
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
