// The releases layout against the real thing (OpenSSH, a uWSGI emperor in
// tyrant mode, nginx): an in-place site converted on its first deploy, code
// deploys beside the live release, a broken release rolled back by itself,
// `rollback`, and retention. While deploys run, a bounded request loop
// through nginx counts what visitors would have got.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages):
//   npx vitest run --config vitest.e2e.config.ts test/e2e/releases.e2e.test.ts
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
const SITE = 'rsone';
const RUN_MS = 180_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`the releases layout${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let site: lab.DjangoSite;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let nginx: lab.Nginx | undefined;
  let operator: ReturnType<typeof operatorHome> | undefined;
  let home: string;

  beforeAll(async () => {
    refuseOtherEmperors();
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo(SITE, EXAMPLE);
    const user = await lab.createSiteUser(SITE, { authorizedKeys: [key.publicKey] });
    home = user.home;
    // What an earlier run left: this test starts from an in-place site.
    for (const leftover of ['releases', '.deployfile', 'Sites', 'virtualenvs']) fs.rmSync(path.join(home, leftover), { recursive: true, force: true });
    site = await lab.setupDjangoSite(SITE, { origin, settingsPackage: 'example_site' });
    await lab.runAs(SITE, 'cp', ['example_site/settings_production.py', 'example_site/settings.py'], { cwd: site.siteDir });
    sshd = await lab.startSshd();
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    nginx = await lab.startNginx([{ name: SITE, socket: site.socketPath, staticRoot: path.join(home, 'static') }]);
    await served(origin.initialRevision);
    operator = operatorHome(sshd, 'deployfile-releases-home-');
    const target = { host: lab.LOOPBACK, port: sshd.port, identityFile: key.privateKeyPath };
    fs.writeFileSync(
      path.join(origin.workDir, 'deployfile.ts'),
      `// Written by test/e2e/releases.e2e.test.ts.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';
export default defineDeployfile<DjangoVars>({
  sites: { ${SITE}: { ...${JSON.stringify(target)}, vars: { settings: 'example_site', layout: 'releases' } } },
  tasks: { ...djangoTasks({ apps: ['pages'], keepReleases: 2 }) },
});
`,
    );
    await lab.commitAndPush(origin, 'Add deployfile.ts');
    await lab.runAs(SITE, 'git', ['pull', '-q', '--ff-only'], { cwd: site.siteDir });
  });

  afterAll(async () => {
    await nginx?.stop();
    await emperor?.stop();
    await sshd?.stop();
    operator?.remove();
  });

  async function served(revision: string): Promise<void> {
    const url = nginx!.urls[SITE]!;
    const got = await lab.waitForHttp(`${url}revision`, (body, status) => status === 200 && body === revision, 60_000);
    expect(got.body).toBe(revision);
    expect((await lab.waitForHttp(`${url}settings`)).body).toBe('production');
  }

  async function git(...args: string[]): Promise<string> {
    return (await lab.run('git', args, { cwd: origin.workDir })).stdout.trim();
  }

  async function commit(message: string, edit: (dir: string) => void): Promise<string> {
    edit(origin.workDir);
    await git('add', '-A');
    await git('commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  }

  /** Runs deploy while requesting the site through nginx every 50 ms; what visitors got, by status. */
  async function runWatched(args: string[]): Promise<CliRun & { output: string; failedRequests: number; requests: number }> {
    let stop = false;
    let requests = 0;
    let failedRequests = 0;
    const url = `${nginx!.urls[SITE]}revision`;
    const loop = (async () => {
      // Bounded: it ends with the deploy, and never runs past RUN_MS.
      const until = Date.now() + RUN_MS;
      while (!stop && Date.now() < until) {
        requests++;
        try {
          const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
          await response.text();
          if (response.status !== 200) failedRequests++;
        } catch {
          failedRequests++;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const result = await deploy(args, { cwd: origin.workDir, env: operator!.env, timeoutMs: RUN_MS });
    stop = true;
    await loop;
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== deploy ${args.join(' ')}: exit ${result.code}, ${failedRequests}/${requests} requests failed\n${result.stdout}${result.stderr}\n`);
    return { ...result, output: result.stdout + result.stderr, failedRequests, requests };
  }

  function expectExit(result: CliRun & { output: string }, code: number): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  function record(): Array<Record<string, string>> {
    return fs
      .readFileSync(path.join(home, '.deployfile', 'releases.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
  }

  const releaseDirs = () => fs.readdirSync(path.join(home, 'releases')).sort();

  it('the first deploy converts the in-place site (its directory becomes the first release) and deploys beside it, with no failed request', async () => {
    const before = await lab.runAs(SITE, 'git', ['rev-parse', 'HEAD'], { cwd: site.siteDir });
    const next = await commit('A first change in the releases layout', (dir) => fs.appendFileSync(path.join(dir, 'README.md'), '\nReleases.\n'));
    const result = await runWatched(['run', 'deploy']);
    expectExit(result, 0);
    expect(result.output).toContain('into the first release');
    await served(next);
    expect(fs.lstatSync(site.siteDir).isSymbolicLink()).toBe(true);
    expect(fs.lstatSync(site.venvDir).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(site.siteDir)).toMatch(new RegExp(`/releases/\\d{8}T\\d{6}Z-${next.slice(0, 7)}$`));
    // The old virtualenv is set aside, not deleted; the releases have one built for their requirements.
    expect(fs.existsSync(`${site.venvDir}.pre-releases`)).toBe(true);
    expect(fs.readlinkSync(site.venvDir)).toMatch(/@[0-9a-f]{12}$/);
    const built = record().filter((e) => e.event === 'built');
    expect(built.map((e) => e.revision)).toEqual([before.stdout.trim(), next]);
    expect(result.failedRequests, `${result.failedRequests} of ${result.requests} requests failed during the deploy`).toBe(0);
    expect(result.requests).toBeGreaterThan(10);
  });

  it('a code-only deploy reuses the virtualenv of its requirements and serves the new release, with no failed request', async () => {
    const venvBefore = fs.readlinkSync(site.venvDir);
    const next = await commit('A code-only change', (dir) => fs.appendFileSync(path.join(dir, 'README.md'), '\nCode only.\n'));
    // deploy plan knows the releases layout: a virtualenv for these requirements is built, and no static input changed.
    const plan = await deploy(['plan', '--json'], { cwd: origin.workDir, env: operator!.env, timeoutMs: RUN_MS });
    expect(plan.code, plan.stderr).toBe(3);
    const planned = (JSON.parse(plan.stdout) as { sites: Array<Record<string, unknown>> }).sites[0]!;
    expect(planned).toMatchObject({ layout: 'releases', history: 'behind', ship: next, commitCount: 1, requirements: { status: 'unchanged' }, static: { status: 'skipped' }, settings: { changed: false } });
    const result = await runWatched(['run', 'deploy']);
    expectExit(result, 0);
    expect(result.output).toMatch(/requirements unchanged: reusing .*@[0-9a-f]{12}/);
    expect(result.output).not.toContain('pip install');
    // The new release's static files are those the last release collected (by content, not mtime): not collected again.
    expect(result.output).toMatch(/static files unchanged since the last collect \(\d+ files in \S+\/static\): not collecting/);
    expect(result.output).not.toContain('collectstatic');
    await served(next);
    const after = await deploy(['plan', '--json'], { cwd: origin.workDir, env: operator!.env, timeoutMs: RUN_MS });
    expect(after.code, after.stderr).toBe(0);
    expect((JSON.parse(after.stdout) as { sites: Array<Record<string, unknown>> }).sites[0]).toMatchObject({ upToDate: true, wouldChange: false });
    expect(fs.readlinkSync(site.venvDir)).toBe(venvBefore);
    expect(result.failedRequests, `${result.failedRequests} of ${result.requests} requests failed during the deploy`).toBe(0);
  });

  it('a release that does not serve is rolled back by itself: the previous one serves again, the bad one is recorded, exit 1', async () => {
    const good = await lab.runAs(SITE, 'git', ['rev-parse', 'HEAD'], { cwd: site.siteDir });
    const liveBefore = fs.readlinkSync(site.siteDir);
    const broken = await commit('Rename the wsgi callable (breaks uWSGI)', (dir) => {
      const file = path.join(dir, 'example_site', 'wsgi.py');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('application = get_wsgi_application()', 'app = get_wsgi_application()'));
    });
    const result = await runWatched(['run', 'deploy']);
    expectExit(result, 1);
    expect(result.output).toMatch(new RegExp(`release \\S+-${broken.slice(0, 7)} does not serve, so \\S+ was put back and serves again; the site served errors for at most [\\d.]+s`));
    expect(result.output).toContain("AttributeError: module 'example_site.wsgi' has no attribute 'application'");
    await served(good.stdout.trim());
    expect(fs.readlinkSync(site.siteDir)).toBe(liveBefore);
    const bad = record().filter((e) => e.event === 'bad');
    expect(bad.at(-1)?.release).toMatch(new RegExp(`-${broken.slice(0, 7)}$`));
    // Visitors saw errors only while the broken release was live.
    expect(result.failedRequests).toBeGreaterThan(0);
    await git('revert', '--no-edit', 'HEAD');
  });

  it('rollback puts the previous healthy release back (code and virtualenv) and records who and why', async () => {
    const current = fs.readlinkSync(site.siteDir);
    const states = record();
    const result = await runWatched(['rollback', '--yes', '-m', 'checking the rollback']);
    expectExit(result, 0);
    const now = fs.readlinkSync(site.siteDir);
    expect(now).not.toBe(current);
    const rolled = record().filter((e) => e.event === 'rolled-back').at(-1);
    expect(rolled).toMatchObject({ release: path.basename(current), to: path.basename(now), message: 'checking the rollback' });
    expect(rolled?.operator).toBeTruthy();
    const revision = states.find((e) => e.event === 'built' && e.release === path.basename(now))?.revision;
    await served(revision as string);
    expect(result.failedRequests, `${result.failedRequests} of ${result.requests} requests failed during the rollback`).toBe(0);

    // --to a unique prefix of a release's id: forward again, to the release rolled back from.
    const again = await runWatched(['rollback', '--yes', '--to', path.basename(current).slice(0, 20)]);
    expectExit(again, 0);
    expect(fs.readlinkSync(site.siteDir)).toBe(current);
    await served(states.find((e) => e.event === 'built' && e.release === path.basename(current))?.revision as string);

    // Without a TTY and without --yes, nothing is changed.
    const unasked = await runWatched(['rollback', '--to', path.basename(now)]);
    expectExit(unasked, 1);
    expect(unasked.output).toContain('not confirmed; nothing was changed');
    expect(fs.readlinkSync(site.siteDir)).toBe(current);
  });

  it('keeps the newest releases (keepReleases: 2), the current one and the newest healthy one; releases lists them', async () => {
    const next = await commit('One more', (dir) => fs.appendFileSync(path.join(dir, 'README.md'), '\nOne more.\n'));
    const result = await runWatched(['run', 'deploy']);
    expectExit(result, 0);
    await served(next);
    const kept = releaseDirs();
    expect(kept.length).toBeLessThanOrEqual(3);
    expect(kept).toContain(path.basename(fs.readlinkSync(site.siteDir)));
    const listed = await runWatched(['releases', SITE]);
    expectExit(listed, 0);
    expect(listed.output).toMatch(new RegExp(`${path.basename(fs.readlinkSync(site.siteDir))}\\s+${next.slice(0, 12)}\\s+current`));
    // --json: the record as stored, one event per line.
    const json = await runWatched(['releases', SITE, '--json']);
    expectExit(json, 0);
    const events = json.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, string>);
    expect(events).toEqual(record());
    expect(events.some((e) => e.event === 'built' && e.revision === next)).toBe(true);
  });

  it('a rollback across a migration stops and prints the migrate commands; --migrate-back runs them, then switches', async () => {
    const write = (relative: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(origin.workDir, relative)), { recursive: true });
      fs.writeFileSync(path.join(origin.workDir, relative), text);
    };
    const model = (fields: string) => `from django.db import models\n\n\nclass Note(models.Model):\n    text = models.CharField(max_length=100)\n${fields}`;
    // A database in the site user's home, a model, and a deployfile that migrates.
    const first = await commit('A database and a first migration', (dir) => {
      fs.appendFileSync(
        path.join(dir, 'example_site', 'settings_production.py'),
        "\nDATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': HOME / 'db.sqlite3'}}\nDEFAULT_AUTO_FIELD = 'django.db.models.AutoField'\n",
      );
      write('pages/models.py', model(''));
      write('pages/migrations/__init__.py', '');
      write(
        'pages/migrations/0001_initial.py',
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    initial = True\n    dependencies = []\n    operations = [\n        migrations.CreateModel(name='Note', fields=[('id', models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')), ('text', models.CharField(max_length=100))]),\n    ]\n",
      );
      const deployfile = path.join(dir, 'deployfile.ts');
      fs.writeFileSync(deployfile, fs.readFileSync(deployfile, 'utf8').replace('keepReleases: 2', 'keepReleases: 2, migrate: true'));
    });
    const migrated = await runWatched(['run', 'deploy']);
    expectExit(migrated, 0);
    await served(first);
    expect(record().filter((e) => e.event === 'migrations').at(-1)).toMatchObject({ state: { pages: '0001_initial' } });
    const firstRelease = fs.readlinkSync(site.siteDir);

    const second = await commit('A second migration', () => {
      write('pages/models.py', model('    done = models.BooleanField(default=False)\n'));
      write(
        'pages/migrations/0002_note_done.py',
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [('pages', '0001_initial')]\n    operations = [migrations.AddField(model_name='note', name='done', field=models.BooleanField(default=False))]\n",
      );
    });
    expectExit(await runWatched(['run', 'deploy']), 0);
    await served(second);
    const secondRelease = fs.readlinkSync(site.siteDir);

    const stopped = await runWatched(['rollback', '--yes', '--to', path.basename(firstRelease)]);
    expectExit(stopped, 1);
    expect(stopped.output).toContain('has other migrations than the current');
    expect(stopped.output).toContain('./manage.py migrate pages 0001_initial');
    expect(stopped.output).toContain('Nothing was changed');
    expect(fs.readlinkSync(site.siteDir)).toBe(secondRelease);

    const back = await runWatched(['rollback', '--yes', '--to', path.basename(firstRelease), '--migrate-back']);
    expectExit(back, 0);
    expect(fs.readlinkSync(site.siteDir)).toBe(firstRelease);
    await served(first);
    // The database itself: 0002 was unapplied (the first release's code does not even know it).
    const applied = await lab.runAs(SITE, '/usr/bin/python3', ['-c', "import sqlite3; print(sorted(r[0] for r in sqlite3.connect('db.sqlite3').execute(\"select name from django_migrations where app='pages'\")))"], { cwd: home });
    expect(applied.stdout.trim()).toBe("['0001_initial']");
  });
});

