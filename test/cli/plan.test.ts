import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
