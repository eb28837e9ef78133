// A deploy you can trust, end to end, on the blog post's layout (a uWSGI
// emperor in tyrant mode, one Unix user per site, nginx in front):
//   - one run deploys sites that are separate projects with their own local
//     working copies beside one project deployed to two sites, at --parallel 4;
//   - a deploy stopped at any step (a failing step, the process killed,
//     Ctrl-C) leaves what a reload would load complete: the test reloads the
//     vassal itself and reads, through nginx, which revision and which
//     settings the app then serves.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages):
//   npx vitest run --config vitest.e2e.config.ts test/e2e/trust.e2e.test.ts
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { refuseOtherEmperors, reloadVassalAndWait } from '../lab/emperors.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
/** Two separate projects (one site each) and one project deployed to two sites. */
const PROJECTS = { trone: ['trone'], trtwo: ['trtwo'], trshared: ['trshareda', 'trsharedb'] } as const;
type Project = keyof typeof PROJECTS;
const SITES = Object.values(PROJECTS).flat();
type SiteName = (typeof SITES)[number];
const DEPLOY_MS = 180_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`a deploy you can trust${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  const origins = {} as Record<Project, lab.OriginRepo>;
  const sites = {} as Record<SiteName, lab.DjangoSite>;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let nginx: lab.Nginx | undefined;
  let home: string | undefined;
  /** Where the operator keeps the deployfile: beside the projects, in none of them. */
  let ops: string | undefined;
  let env: NodeJS.ProcessEnv;

  const projectOf = (site: SiteName): Project => (Object.keys(PROJECTS) as Project[]).find((p) => (PROJECTS[p] as readonly string[]).includes(site))!;

  beforeAll(async () => {
    refuseOtherEmperors();
    key = await lab.createOperatorKey();
    for (const project of Object.keys(PROJECTS) as Project[]) {
      origins[project] = await lab.createOriginRepo(project, EXAMPLE);
      for (const name of PROJECTS[project]) {
        const user = await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
        sites[name] = await lab.setupDjangoSite(name, { origin: origins[project], settingsPackage: 'example_site' });
        // The lab has no network: a requirement pip cannot find must fail at once, not after retries.
        const pipConf = path.join(user.home, '.config', 'pip');
        await lab.runAs(name, 'mkdir', ['-p', pipConf]);
        await lab.runAs(name, 'sh', ['-c', `printf '[global]\\nno-index = true\\n' > ${pipConf}/pip.conf`]);
        // As a first deploy would leave it: production settings in place.
        await lab.runAs(name, 'cp', ['example_site/settings_production.py', 'example_site/settings.py'], { cwd: sites[name].siteDir });
        fs.rmSync(path.join(user.home, '.deployfile'), { recursive: true, force: true });
      }
    }
    sshd = await lab.startSshd();
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    nginx = await lab.startNginx(SITES.map((name) => ({ name, socket: sites[name].socketPath, staticRoot: path.join(sites[name].user.home, 'static') })));
    for (const name of SITES) await served(name, origins[projectOf(name)].initialRevision);

    ({ home, env } = operatorHome(sshd, 'deployfile-trust-home-'));
    ops = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-trust-ops-'));
    fs.writeFileSync(path.join(ops, 'deployfile.ts'), deployfileText());
  });

  afterAll(async () => {
    await nginx?.stop();
    await emperor?.stop();
    await sshd?.stop();
    for (const dir of [home, ops]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function deployfileText(): string {
    const server = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
    const siteEntries = SITES.map((name) => `    ${name}: { ...server, vars: { settings: 'example_site', localDir: ${JSON.stringify(origins[projectOf(name)].workDir)} } },`);
    return `// Written by test/e2e/trust.e2e.test.ts: four sites from three working copies.
import { defineDeployfile, task } from 'deployfile';
import { deploy, DEPLOY_STEPS, djangoTasks, type DjangoVars } from 'deployfile/tasks';

const server = ${JSON.stringify(server)};

/** The built-in deploy with one more step after \`after\`: how the tests stop a deploy at a chosen point. */
const stopAfter = (after: string, step: string) => {
  const at = DEPLOY_STEPS.indexOf(after as (typeof DEPLOY_STEPS)[number]) + 1;
  return deploy({ steps: [...DEPLOY_STEPS.slice(0, at), step, ...DEPLOY_STEPS.slice(at)] });
};

export default defineDeployfile<DjangoVars>({
  sites: {
${siteEntries.join('\n')}
  },
  tasks: {
    ...djangoTasks({ apps: ['pages'] }),
    // The deploy process killed outright (kill -9, an OOM kill, a closed CI runner).
    die: task('Kill this deploy process', async () => {
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => {});
    }),
    pause: task('Wait on the server', async (c) => {
      await c.run('sleep 60');
    }),
    ...Object.fromEntries(
      DEPLOY_STEPS.flatMap((after) => [
        ['dieAfter_' + after, stopAfter(after, 'die')],
        ['pauseAfter_' + after, stopAfter(after, 'pause')],
      ]),
    ),
  },
});
`;
  }

  async function run(args: string[], onStart?: (child: ChildProcess) => void): Promise<CliRun & { output: string }> {
    const result = await deploy(args, { cwd: ops, env, timeoutMs: DEPLOY_MS, onStart });
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== deploy ${args.join(' ')}: exit ${result.code}\n${result.stdout}${result.stderr}\n`);
    return { ...result, output: result.stdout + result.stderr };
  }

  function expectExit(result: CliRun & { output: string }, code: number): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  async function git(project: Project, ...args: string[]): Promise<string> {
    return (await lab.run('git', args, { cwd: origins[project].workDir })).stdout.trim();
  }

  /** A commit in the project's working copy, not pushed: pushing is the deploy's job. */
  async function commit(project: Project, message: string, edit: (dir: string) => void): Promise<string> {
    edit(origins[project].workDir);
    await git(project, 'add', '-A');
    await git(project, 'commit', '-q', '-m', message);
    return git(project, 'rev-parse', 'HEAD');
  }

  function append(file: string, text: string): (dir: string) => void {
    return (dir) => fs.appendFileSync(path.join(dir, file), text);
  }

  async function siteHead(name: SiteName): Promise<string> {
    return (await lab.runAs(name, 'git', ['-C', sites[name].siteDir, 'rev-parse', 'HEAD'])).stdout.trim();
  }

  /** What nginx serves for the site: the revision (polled until it is `revision`) and which settings are loaded. */
  async function served(name: SiteName, revision: string): Promise<void> {
    const url = nginx!.urls[name]!;
    const got = await lab.waitForHttp(`${url}revision`, (body, status) => status === 200 && body === revision, 60_000);
    expect(got.body).toBe(revision);
    const settings = await lab.waitForHttp(`${url}settings`, (_b, status) => status === 200);
    expect(settings.body, `${name} serves ${revision} with development settings`).toBe('production');
  }

  /**
   * Reload the vassal as the site user would (touch its ini), wait until the
   * emperor has really reloaded it, then read what it serves: what a reload
   * after the stopped deploy would put live.
   */
  async function reloadAndCheck(name: SiteName, revision: string): Promise<void> {
    await reloadVassalAndWait(name, emperor!.logPath);
    await served(name, revision);
  }

  /** A deploy stopped by the process being killed leaves its lock: clear it as `deploy unlock` would. */
  function clearLock(name: SiteName): void {
    fs.rmSync(path.join(sites[name].user.home, '.deployfile', 'lock'), { recursive: true, force: true });
  }

  it('deploys two separate projects and one project on two sites in one run at --parallel 4: each site gets its own working copy\'s revision', async () => {
    const revisions = {} as Record<Project, string>;
    for (const project of Object.keys(PROJECTS) as Project[]) {
      revisions[project] = await commit(project, `A change to ${project}`, append('README.md', `\nChanged for ${project}.\n`));
    }
    expect(new Set(Object.values(revisions)).size).toBe(3);
    const result = await run(['run', 'deploy', '--parallel', '4']);
    expectExit(result, 0);
    for (const name of SITES) {
      const project = projectOf(name);
      expect(await siteHead(name)).toBe(revisions[project]);
      await served(name, revisions[project]);
    }
    // Tests and push once per working copy, not once per run or per site.
    for (const project of Object.keys(PROJECTS) as Project[]) {
      const dir = origins[project].workDir;
      expect(result.output.split('\n').filter((line) => line === `[local] ▶ test ${dir} (once for the run)`), result.output).toHaveLength(1);
      expect(result.output.split('\n').filter((line) => line === `[local] ▶ push ${dir} (once for the run)`)).toHaveLength(1);
      // The summary says which working copy each site came from.
      for (const name of PROJECTS[project]) {
        expect(result.output).toMatch(new RegExp(`\\n  ${name} +ok +[^\\n]*\\n +${revisions[project].slice(0, 12)} from ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
      }
    }
  });

  it('failing tests in one working copy stop only its sites; the others deploy', async () => {
    const good = await commit('trone', 'Fine', append('README.md', '\nStill fine.\n'));
    const before = await siteHead('trtwo');
    await commit('trtwo', 'A failing test', append('pages/tests.py', "\n\nclass Failing(SimpleTestCase):\n    def test_fails(self):\n        self.fail('on purpose')\n"));
    const result = await run(['run', 'deploy', '-s', 'trone,trtwo', '--parallel', '4']);
    expectExit(result, 1);
    expect(result.output).toContain(`? Tests failed in ${origins.trtwo.workDir}. Continue anyway? no`);
    await served('trone', good);
    expect(await siteHead('trtwo')).toBe(before);
    await served('trtwo', before);
    // Back to green for what follows.
    await git('trtwo', 'revert', '--no-edit', 'HEAD');
  });

  describe('a deploy stopped at a step leaves what a reload loads complete', () => {
    const site: SiteName = 'trone';
    const project: Project = 'trone';

    it('at fetch (a file edited on the server): nothing changes; a reload serves the old code with production settings', async () => {
      const old = await siteHead(site);
      const next = await commit(project, 'Next', append('README.md', '\nNext.\n'));
      await lab.runAs(site, 'sh', ['-c', 'echo "# edited on the server" >> pages/views.py'], { cwd: sites[site].siteDir });
      try {
        const result = await run(['run', 'deploy', '-s', site]);
        expectExit(result, 1);
        expect(result.output).toContain('has local edits on the server');
        expect(result.output).toContain('M pages/views.py');
        expect(result.output).toContain('Nothing was changed on the server');
        expect(await siteHead(site)).toBe(old);
        await reloadAndCheck(site, old);
      } finally {
        await lab.runAs(site, 'git', ['checkout', '--', 'pages/views.py'], { cwd: sites[site].siteDir });
      }
      const again = await run(['run', 'deploy', '-s', site]);
      expectExit(again, 0);
      await served(site, next);
    });

    it('at installRequirements (pip fails): the old code stays, with production settings', async () => {
      const old = await siteHead(site);
      await commit(project, 'A requirement that does not exist', append('REQUIREMENTS', 'no-such-package-deployfile-e2e==1.0\n'));
      const result = await run(['run', 'deploy', '-s', site]);
      expectExit(result, 1);
      expect(result.output).toContain('no-such-package-deployfile-e2e');
      expect(result.output).toMatch(/failed at installRequirements|installRequirements failed/);
      expect(await siteHead(site)).toBe(old);
      await reloadAndCheck(site, old);
      await git(project, 'revert', '--no-edit', 'HEAD');
    });

    it('at pull (git refuses the switch): the old code stays, with production settings', async () => {
      const old = await siteHead(site);
      await commit(project, 'Add a file', (dir) => fs.writeFileSync(path.join(dir, 'pages', 'added.py'), 'X = 1\n'));
      // An untracked file on the server where the new commit adds one: git refuses to overwrite it.
      await lab.runAs(site, 'sh', ['-c', 'echo "in the way" > pages/added.py'], { cwd: sites[site].siteDir });
      try {
        const result = await run(['run', 'deploy', '-s', site]);
        expectExit(result, 1);
        expect(result.output).toContain('pages/added.py');
        expect(await siteHead(site)).toBe(old);
        const settings = fs.readFileSync(path.join(sites[site].siteDir, 'example_site', 'settings.py'), 'utf8');
        expect(settings).toContain('DEBUG = False');
        await reloadAndCheck(site, old);
      } finally {
        fs.rmSync(path.join(sites[site].siteDir, 'pages', 'added.py'), { force: true });
      }
    });

    it('at collectstatic (~/static not writable): the new code is in place with its production settings, and a reload serves it', async () => {
      // A new static file, so collectstatic has to write into ~/static.
      const next = await commit(project, 'A new stylesheet', (dir) => fs.writeFileSync(path.join(dir, 'pages', 'static', 'pages', 'extra.css'), 'p { margin: 0 }\n'));
      const staticDir = path.join(sites[site].user.home, 'static');
      fs.mkdirSync(staticDir, { recursive: true });
      const owner = fs.statSync(staticDir);
      await lab.run('chown', ['-R', 'root:root', staticDir]);
      try {
        const result = await run(['run', 'deploy', '-s', site]);
        expectExit(result, 1);
        expect(result.output).toMatch(/failed at collectstatic|collectstatic failed/);
        expect(await siteHead(site)).toBe(next);
        await reloadAndCheck(site, next);
      } finally {
        await lab.run('chown', ['-R', `${owner.uid}:${owner.gid}`, staticDir]);
      }
    });

    for (const after of ['fetch', 'installRequirements', 'pull', 'collectstatic'] as const) {
      it(`the deploy process killed after ${after}: a reload serves complete old or complete new code`, async () => {
        const old = await siteHead(site);
        const next = await commit(project, `Killed after ${after}`, append('README.md', `\nKilled after ${after}.\n`));
        const result = await run(['run', `dieAfter_${after}`, '-s', site]);
        expect(result.code, result.output).toBeNull(); // killed by SIGKILL: no exit code
        clearLock(site);
        const switched = after === 'pull' || after === 'collectstatic';
        expect(await siteHead(site)).toBe(switched ? next : old);
        await reloadAndCheck(site, switched ? next : old);
      });
    }

    it('Ctrl-C while a step runs on the server: exit 130, and a reload serves the old code with production settings', async () => {
      const old = await siteHead(site);
      await commit(project, 'Interrupted', append('README.md', '\nInterrupted.\n'));
      const result = await run(['run', 'pauseAfter_installRequirements', '-s', site], (child) => {
        for (const stream of [child.stdout, child.stderr]) {
          stream?.on('data', (chunk: Buffer) => {
            if (chunk.toString().includes('$ sleep 60')) child.kill('SIGINT');
          });
        }
      });
      expectExit(result, 130);
      expect(await siteHead(site)).toBe(old);
      await reloadAndCheck(site, old);
      // The lock was released: the next deploy goes through.
      const again = await run(['run', 'deploy', '-s', site]);
      expectExit(again, 0);
    });
  });
});
