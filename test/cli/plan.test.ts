import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planDetails, planTable } from '../../src/cli/plan.ts';
import { PlanDocumentSchema, type SitePlan } from '../../tasks/plan/schema.ts';
import { deploy } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

// `deploy plan` without a server: what it teaches and what it refuses.
// Plans of real sites: test/e2e/plan.e2e.test.ts.

afterAll(removeTempDirs);

let dir: string;

beforeAll(async () => {
  dir = await tempDir('deployfile-cli-plan-');
  await writeFile(
    join(dir, 'deployfile.ts'),
    `import { defineDeployfile } from 'deployfile';
import { djangoTasks } from 'deployfile/tasks';
export default defineDeployfile({ sites: { alleged: { host: 'web1.example.com' } }, tasks: djangoTasks() });
`,
  );
});

describe('deploy plan', () => {
  it('--help says what it compares, that it is read-only, and its exit codes (3: something would change)', async () => {
    const help = await deploy(['plan', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['requirements', 'migrations', 'settings', 'Read-only', 'no git fetch', '3 at least one would', 'deploy plan -s shop --json', 'docs/plan.md']) expect(help.stdout).toContain(text);
    expect((await deploy(['--help'])).stdout).toMatch(/plan \[options\]\s+show what a deploy would change/);
  });

  it('an unknown or empty site selection is a usage error, exit 2, and no table', async () => {
    for (const args of [['-s', 'nope'], ['-s', '']]) {
      const run = await deploy(['plan', ...args], { cwd: dir });
      expect(run.code, run.stderr).toBe(2);
      expect(run.stdout).not.toContain('site  commits');
    }
  });
});

describe('deploy plan, before any server', () => {
  it('a working copy that is missing or not a git checkout: the site could not be planned (exit 1), and the table says why', async () => {
    const notGit = await tempDir('deployfile-cli-plan-notgit-');
    const ops = await tempDir('deployfile-cli-plan-ops-');
    await writeFile(
      join(ops, 'deployfile.ts'),
      `import { defineDeployfile } from 'deployfile';
import { djangoTasks } from 'deployfile/tasks';
export default defineDeployfile({
  sites: { gone: { host: '127.0.0.1', port: 9, vars: { localDir: '/nonexistent/checkout' } }, plain: { host: '127.0.0.1', port: 9, vars: { localDir: ${JSON.stringify(notGit)} } } },
  tasks: djangoTasks(),
});
`,
    );
    const run = await deploy(['plan'], { cwd: ops });
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toMatch(/gone\s+could not be planned\s+plan: the working copy \/nonexistent\/checkout does not exist; set localDir/);
    expect(run.stdout).toMatch(new RegExp(`plain\\s+could not be planned\\s+plan: ${notGit.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not a git checkout`));
    expect(run.stdout).toContain('2 sites could not be planned: gone, plain');
    const json = await deploy(['plan', '--json'], { cwd: ops });
    expect(json.code).toBe(1);
    const doc = PlanDocumentSchema.parse(JSON.parse(json.stdout));
    expect(doc).toMatchObject({ sites: [], exitCode: 1 });
    expect(doc.failed.map((f) => f.site).sort()).toEqual(['gone', 'plain']);
  });
});

describe('the plan table and details', () => {
  const base: SitePlan = {
    site: 'shop', localDir: '/src/shop', layout: 'in-place', served: 'a'.repeat(40), ship: 'b'.repeat(40), branch: 'main', upToDate: false, history: 'behind',
    commits: [{ sha: 'bbbbbbb', subject: 'Add slugs' }], commitCount: 12, warnings: [], local: { clean: true, pushed: false },
    requirements: { file: 'REQUIREMENTS', status: 'changed', added: [{ name: 'sentry-sdk', to: 'sentry-sdk' }], removed: [], changed: [], pip: { install: [{ name: 'sentry-sdk', version: '2.1.0' }, { name: 'urllib3', version: '2.2.0' }] } },
    static: { status: 'skipped', reason: 'no static file or settings differ' },
    migrations: [{ app: 'pages', name: '0002_fill', path: 'pages/migrations/0002_fill.py', irreversible: 'RunPython without reverse_code' }],
    settings: { file: 'shop/settings.py', changed: true, diff: '--- a\n+++ b\n@@ -1 +1 @@\n-DEBUG = True\n+DEBUG = False' },
    vassal: { file: '/etc/uwsgi/emperor.d/shop.ini', changed: false, reason: 'deploy does not write it' }, wouldChange: true,
  };
  const blog: SitePlan = { ...base, site: 'blog', served: base.ship, upToDate: true, history: 'same', commits: [], commitCount: 0, requirements: { file: 'REQUIREMENTS', status: 'unchanged', added: [], removed: [], changed: [] }, migrations: [], settings: { file: 'blog/settings.py', changed: false }, wouldChange: false };

  it('a row per site, aligned, then the verdict; a site that could not be planned says why', () => {
    const table = planTable([blog, base], [{ site: 'wiki', error: 'plan: cannot read the revision of /home/wiki/Sites/wiki: no such directory\nmore' }]);
    const lines = table.split('\n').filter(Boolean);
    expect(lines.slice(0, 3)).toEqual([
      'site  commits               pip               static   migrations        settings',
      'blog  up to date            skipped           skipped  none              same',
      'shop  12 new                runs (1 changed)  skipped  1 (irreversible)  changes',
    ]);
    // The first line of why, in the last column.
    expect(lines[3]).toMatch(/^wiki  could not be planned {20,}plan: cannot read the revision of \/home\/wiki\/Sites\/wiki: no such directory$/);
    expect(lines.slice(4)).toEqual(['1 site could not be planned: wiki']);
    expect(planTable([blog], [])).toContain('nothing to deploy: the site is up to date');
    expect(planTable([blog, { ...base, history: 'unknown' }], [])).toMatch(/shop\s+unknown \(server has its own\)/);
  });

  it('details keep what the progress view showed only while running: commits, pip, migrations, the settings diff, warnings', () => {
    const text = planDetails({ ...base, warnings: ['the server has local edits'] });
    expect(text).toContain('shop: at aaaaaaa, a deploy would ship bbbbbbb (main; behind)');
    expect(text).toContain('  bbbbbbb Add slugs\n  ... and 11 more');
    expect(text).toContain('requirements: +sentry-sdk, pip runs');
    expect(text).toContain('pip --dry-run: sentry-sdk==2.1.0, urllib3==2.2.0');
    expect(text).toContain('migration: pages.0002_fill (cannot be reversed: RunPython without reverse_code)');
    expect(text).toContain('    +DEBUG = False');
    expect(text).toContain('warning: the server has local edits');
  });
});
