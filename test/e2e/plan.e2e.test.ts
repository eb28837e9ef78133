// `deploy plan` against the real lab: two sites, each its own project with
// its own working copy, deployed once (so the servers hold the records a
// deploy leaves: the installed requirements, the static inputs), then
// planned after each kind of change, as an operator would before deploying.
// Every plan is checked to have changed nothing: not the sites' home
// directories (history included), not the working copies' refs.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), with a lab
// of its own if other e2e files run at the same time:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-plan DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/plan.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/plan.e2e.test.ts
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanDocumentSchema, type PlanDocument, type SitePlan } from '../../tasks/plan/schema.ts';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { TmuxTerminal, tmuxMissing } from '../helpers/tmux.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome, type OperatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
const SITES = ['plone', 'pltwo'] as const;
type SiteName = (typeof SITES)[number];
const RUN_MS = 180_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`deploy plan${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  const origins = {} as Record<SiteName, lab.OriginRepo>;
  const sites = {} as Record<SiteName, lab.DjangoSite>;
  let sshd: lab.Sshd | undefined;
  let operator: OperatorHome | undefined;
  let ops: string | undefined;

  beforeAll(async () => {
    key = await lab.createOperatorKey();
    for (const name of SITES) {
      // One project per site, each with its own working copy.
      origins[name] = await lab.createOriginRepo(`${name}-project`, EXAMPLE);
      const user = await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      sites[name] = await lab.setupDjangoSite(name, { origin: origins[name], settingsPackage: 'example_site' });
      // The lab has no network: pip must not wait on an index.
      const pipConf = path.join(user.home, '.config', 'pip');
      await lab.runAs(name, 'mkdir', ['-p', pipConf]);
      await lab.runAs(name, 'sh', ['-c', `printf '[global]\\nno-index = true\\n' > ${pipConf}/pip.conf`]);
      fs.rmSync(path.join(user.home, '.deployfile'), { recursive: true, force: true });
    }
    sshd = await lab.startSshd();
    operator = operatorHome(sshd, 'deployfile-plan-home-');
    ops = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-plan-ops-'));
    fs.writeFileSync(path.join(ops, 'deployfile.ts'), deployfileText());
    // The first deploy: after it, both sites are up to date and their records exist.
    const first = await run(['run', 'deploy']);
    expectExit(first, 0);
  }, 300_000);

  afterAll(async () => {
    await sshd?.stop();
    operator?.remove();
    if (ops) fs.rmSync(ops, { recursive: true, force: true });
  });

  function deployfileText(): string {
    const server = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
    const entries = SITES.map((name) => `    ${name}: { ...server, vars: { settings: 'example_site', localDir: ${JSON.stringify(origins[name].workDir)} } },`);
    return `// Written by test/e2e/plan.e2e.test.ts: two sites, two working copies; no app server, so deploy stops before the reload.
import { defineDeployfile } from 'deployfile';
import { DEPLOY_STEPS, djangoTasks, type DjangoVars } from 'deployfile/tasks';

const server = ${JSON.stringify(server)};

export default defineDeployfile<DjangoVars>({
  sites: {
${entries.join('\n')}
  },
  tasks: djangoTasks({ apps: ['pages'], steps: DEPLOY_STEPS.filter((step) => step !== 'touchVassalIni') }),
});
`;
  }

  async function run(args: string[]): Promise<CliRun & { output: string }> {
    const result = await deploy(args, { cwd: ops, env: operator!.env, timeoutMs: RUN_MS });
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== deploy ${args.join(' ')}: exit ${result.code}\n${result.stdout}${result.stderr}\n`);
    return { ...result, output: result.stdout + result.stderr };
  }

  function expectExit(result: CliRun & { output: string }, code: number): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  /** Every file under the sites' homes (path, size, mtime) and every ref of the working copies. */
  async function snapshot(): Promise<string> {
    const parts: string[] = [];
    for (const name of SITES) {
      parts.push((await lab.run('find', [sites[name].user.home, '-printf', '%p %s %T@\\n'])).stdout.split('\n').sort().join('\n'));
      parts.push((await lab.run('git', ['for-each-ref', '--format=%(refname) %(objectname)'], { cwd: origins[name].workDir })).stdout);
      parts.push((await lab.run('git', ['status', '--porcelain'], { cwd: origins[name].workDir })).stdout);
    }
    return parts.join('\n');
  }

  /** `deploy plan --json`, checked against its schema and against having changed nothing. */
  async function planJson(...args: string[]): Promise<{ result: CliRun & { output: string }; doc: PlanDocument; site: (name: SiteName) => SitePlan }> {
    const before = await snapshot();
    const result = await run(['plan', '--json', ...args]);
    expect(await snapshot(), 'deploy plan changed something on a server or in a working copy').toBe(before);
    const doc = PlanDocumentSchema.parse(JSON.parse(result.stdout));
    expect(doc.exitCode).toBe(result.code);
    return { result, doc, site: (name) => doc.sites.find((s) => s.site === name)! };
  }

  async function git(name: SiteName, ...args: string[]): Promise<string> {
    return (await lab.run('git', args, { cwd: origins[name].workDir })).stdout.trim();
  }

  /** A commit in the site's working copy, not pushed: pushing is the deploy's job. */
  async function commit(name: SiteName, message: string, edit: (dir: string) => void): Promise<string> {
    edit(origins[name].workDir);
    await git(name, 'add', '-A');
    await git(name, '-c', 'user.name=plan e2e', '-c', 'user.email=plan@deployfile.invalid', 'commit', '-q', '-m', message);
    return git(name, 'rev-parse', 'HEAD');
  }

  const edit = (file: string, change: (text: string) => string) => (dir: string) => {
    const full = path.join(dir, file);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    fs.writeFileSync(full, change(fs.existsSync(full) ? fs.readFileSync(full, 'utf8') : ''));
  };

  it('right after a deploy: every site up to date, pip and collectstatic skipped, exit 0, and the table says so', async () => {
    const before = await snapshot();
    const result = await run(['plan']);
    expect(await snapshot()).toBe(before);
    expectExit(result, 0);
    for (const name of SITES) {
      expect(result.stdout).toContain(`[${name}] up to date: the site is at ${(await git(name, 'rev-parse', 'HEAD')).slice(0, 12)} (main)`);
      expect(result.stdout).toContain(`[${name}] requirements: REQUIREMENTS unchanged since the last install: pip would be skipped`);
      expect(result.stdout).toContain(`[${name}] static files: unchanged: collectstatic would be skipped`);
      expect(result.stdout).toMatch(new RegExp(`\\n${name}\\s+up to date\\s+skipped\\s+skipped\\s+none\\s+same\\n`));
    }
    expect(result.stdout).toContain('nothing to deploy: all 2 sites are up to date');
  });

  it('a code-only change in one working copy: that site would get the commit and nothing else, the other stays up to date; exit 3', async () => {
    const sha = await commit('plone', 'Say hello differently', edit('pages/views.py', (py) => `${py}\n# a code-only change\n`));
    const { result, site } = await planJson();
    expectExit(result, 3);
    const one = site('plone');
    expect(one).toMatchObject({ upToDate: false, history: 'behind', ship: sha, commitCount: 1, commits: [{ sha: sha.slice(0, 7), subject: 'Say hello differently' }], wouldChange: true });
    expect(one.requirements.status).toBe('unchanged');
    expect(one.static.status).toBe('skipped');
    expect(one.migrations).toEqual([]);
    expect(one.settings.changed).toBe(false);
    expect(one.local).toEqual({ clean: true, pushed: false });
    expect(site('pltwo')).toMatchObject({ upToDate: true, wouldChange: false, commitCount: 0 });
    // The progress went to stderr, the document alone to stdout.
    expect(result.stderr).toContain(`[plone] the site is at `);
  });

  it('requirements, a migration that cannot be reversed, a stylesheet and the production settings: each is named, with the settings diff', async () => {
    await commit('plone', 'Require sqlparse, add a data migration, restyle, log more', (dir) => {
      edit('REQUIREMENTS', (text) => text.replace('Django>=3.2,<6', 'Django>=3.2,<7') + 'sqlparse\n')(dir);
      edit('pages/migrations/__init__.py', () => '')(dir);
      edit('pages/migrations/0001_initial.py', () => 'from django.db import migrations\n\n\ndef fill(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = []\n    operations = [migrations.RunPython(fill)]\n')(dir);
      edit('pages/static/pages/plan.css', () => 'body { color: teal; }\n')(dir);
      edit('example_site/settings_production.py', (py) => `${py}\nPLAN_E2E = True\n`)(dir);
    });
    const { result, site } = await planJson('-s', 'plone');
    expectExit(result, 3);
    expect(result.stderr).not.toContain('[pltwo]');
    const one = site('plone');
    expect(one.commitCount).toBe(2);
    expect(one.requirements).toMatchObject({ status: 'changed', added: [{ name: 'sqlparse', to: 'sqlparse' }], changed: [{ name: 'Django', from: 'Django>=3.2,<6', to: 'Django>=3.2,<7' }], removed: [] });
    // pip's own answer, from the site's virtualenv: Debian's Django and sqlparse already satisfy both.
    expect(one.requirements.pip).toEqual({ install: [] });
    expect(one.migrations).toEqual([{ app: 'pages', name: '0001_initial', path: 'pages/migrations/0001_initial.py', irreversible: 'RunPython without reverse_code' }]);
    expect(one.static.status).toBe('collected');
    expect(one.static.reason).toContain('pages/static/pages/plan.css');
    expect(one.settings.changed).toBe(true);
    expect(one.settings.diff).toContain('+PLAN_E2E = True');
    expect(one.settings.diff).toMatch(/^--- plone:.*example_site\/settings\.py/m);
    // The same in the human view, and the row of the table.
    const human = await run(['plan', '-s', 'plone']);
    expectExit(human, 3);
    expect(human.stdout).toContain('[plone] requirements: +sqlparse, Django>=3.2,<6 -> Django>=3.2,<7: pip install would run');
    expect(human.stdout).toContain('[plone] pip --dry-run: nothing to install, every requirement is already satisfied');
    expect(human.stdout).toContain('[plone] migration: pages.0001_initial (cannot be reversed: RunPython without reverse_code)');
    expect(human.stdout).toContain('[plone]   +PLAN_E2E = True');
    expect(human.stdout).toMatch(/\nplone\s+2 new\s+runs \(2 changed\)\s+runs\s+1 \(irreversible\)\s+changes\n/);
    expect(human.stdout).toContain('a deploy would change 1 of 1 site: plone');
  });

  it.skipIf(tmuxMissing !== undefined)('on a terminal the progress view shows a site only while it runs: the details are printed again above the table', async () => {
    const term = await TmuxTerminal.start(ops!, ['plan', '-s', 'plone'], { columns: 120, rows: 60 }, { HOME: operator!.env.HOME!, PATH: operator!.env.PATH! });
    try {
      expect(await term.exitCode(RUN_MS)).toBe(3);
      const screen = term.screen(true);
      expect(screen).toMatch(/plone: at [0-9a-f]{7}, a deploy would ship [0-9a-f]{7} \(main; behind\)/);
      expect(screen).toContain('migration: pages.0001_initial (cannot be reversed: RunPython without reverse_code)');
      expect(screen).toContain('    +PLAN_E2E = True');
      expect(screen).toMatch(/plone\s+2 new\s+runs \(2 changed\)/);
    } finally {
      term.kill();
    }
  });

  it('a server whose checkout has a commit of its own (diverged) and an edit: warned, with what a deploy would do about it', async () => {
    const served = sites.pltwo.siteDir;
    await lab.runAs('pltwo', 'git', ['-C', served, '-c', 'user.name=someone on the server', '-c', 'user.email=server@deployfile.invalid', 'commit', '-q', '--allow-empty', '-m', 'A fix made on the server']);
    fs.appendFileSync(path.join(served, 'pages', 'views.py'), '\n# edited on the server\n');
    try {
      const { result, site } = await planJson('-s', 'pltwo');
      expectExit(result, 3);
      const two = site('pltwo');
      expect(two.upToDate).toBe(false);
      expect(two.history).toBe('unknown');
      expect(two.warnings.join('\n')).toContain('a commit');
      expect(two.warnings.join('\n')).toContain('a deploy would stop at fetch');
      expect(two.warnings.join('\n')).toContain('pages/views.py');
      expect(result.stderr).toMatch(/\[pltwo\] .*has local edits on the server, which would stop a deploy at fetch: pages\/views\.py/);
    } finally {
      // Back as the deploy left it: --keep leaves the production settings.py the deploy copied.
      await lab.runAs('pltwo', 'git', ['-C', served, 'reset', '-q', '--keep', 'HEAD~1']);
      await lab.runAs('pltwo', 'git', ['-C', served, 'checkout', '--', 'pages/views.py']);
    }
  });

  it('a working copy with uncommitted changes is named, and a site that cannot be reached makes the plan exit 1', async () => {
    fs.appendFileSync(path.join(origins.pltwo.workDir, 'pages', 'views.py'), '\n# not committed\n');
    try {
      const { result, site } = await planJson('-s', 'pltwo');
      expectExit(result, 0);
      expect(site('pltwo').local.clean).toBe(false);
      expect(site('pltwo').warnings.join('\n')).toContain("deploy's push would refuse them");
    } finally {
      await git('pltwo', 'checkout', '--', 'pages/views.py');
    }
    // A site whose checkout is gone: planned as failed, with why.
    await lab.runAs('pltwo', 'mv', [sites.pltwo.siteDir, `${sites.pltwo.siteDir}.away`]);
    try {
      const { result, doc } = await planJson();
      expectExit(result, 1);
      expect(doc.failed.map((f) => f.site)).toEqual(['pltwo']);
      expect(doc.failed[0]!.error).toContain('cannot read the revision of');
      expect(doc.sites.map((s) => s.site)).toEqual(['plone']);
    } finally {
      await lab.runAs('pltwo', 'mv', [`${sites.pltwo.siteDir}.away`, sites.pltwo.siteDir]);
    }
  });

  it('after deploying what the plan showed, the plan is empty again', async () => {
    const deployed = await run(['run', 'deploy', '-s', 'plone']);
    // sqlparse comes from Debian's python3-sqlparse (a Django dependency) through the system site packages.
    expectExit(deployed, 0);
    const { result, site } = await planJson();
    expectExit(result, 0);
    expect(site('plone')).toMatchObject({ upToDate: true, wouldChange: false });
    expect(site('plone').requirements.status).toBe('unchanged');
    expect(site('plone').static.status).toBe('skipped');
  });
});
