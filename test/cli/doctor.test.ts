import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

// `deploy doctor` without a server: what it teaches, and whom it would run as.
// The checks themselves: test/tasks/doctor/ and test/e2e/doctor.e2e.test.ts.

afterAll(removeTempDirs);

let dir: string;

beforeAll(async () => {
  dir = await tempDir('deployfile-cli-doctor-');
  // No djangoTasks: doctor is the built-in one, with the task library's defaults.
  await writeFile(
    join(dir, 'deployfile.ts'),
    `import { defineDeployfile, task } from 'deployfile';
export default defineDeployfile({
  sites: { alleged: { host: 'web1.example.com', admin: 'root' }, bravo: { host: 'web2.example.com' } },
  tasks: { hello: task('Say hello', async (c) => { await c.local('echo hello'); }) },
});
`,
  );
});

describe('deploy doctor', () => {
  it('--help says what it checks, that it is read-only, and its exit codes', async () => {
    const help = await deploy(['doctor', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['vassal ini', 'wsgi import', 'nginx uwsgi_pass', 'Read-only', "admin: 'root'", 'Exit codes: 0 when no check failed']) expect(help.stdout).toContain(text);
    expect((await deploy(['--help'])).stdout).toMatch(/doctor \[options\]\s+check sites for the pitfalls/);
  });

  it('reaches a site with an admin account as the admin, and runs its site checks as the site user; others as themselves', async () => {
    const { code, stdout } = await deploy(['doctor', '--dry-run'], { cwd: dir });
    expect(code, stdout).toBe(0);
    expect(stdout).toContain('[alleged] start (root@web1.example.com:22)');
    expect(stdout).toMatch(/\[alleged\] \$ sudo .*-u alleged .*cat \/etc\/uwsgi\/emperor\.d\/alleged\.ini/);
    expect(stdout).toContain('[bravo] start (bravo@web2.example.com:22)');
    expect(stdout).toContain('[bravo] $ cd / && cat /etc/uwsgi/emperor.d/bravo.ini');
  });

  it('an unknown site is a usage error, exit 2', async () => {
    expect((await deploy(['doctor', '-s', 'nope'], { cwd: dir })).code).toBe(2);
  });
});
