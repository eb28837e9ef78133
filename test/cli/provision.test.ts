// deploy provision's usage errors: each is refused before any connection,
// exit 2, naming what to change. The real thing runs in test/e2e/provision.e2e.test.ts.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deploy } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

async function project(deployfile: string): Promise<string> {
  const dir = await tempDir('deployfile-provision-cli-');
  await writeFile(join(dir, 'deployfile.ts'), deployfile);
  return dir;
}

describe('deploy provision', () => {
  it('needs -s: never every site by default', async () => {
    const result = await deploy(['provision']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("required option '-s, --site <names>' not specified");
  });

  it('refuses a site without an admin account, naming the settings to add', async () => {
    const dir = await project(`import { defineDeployfile } from 'deployfile';
import { djangoTasks } from 'deployfile/tasks';
export default defineDeployfile({ sites: { shop: { host: 'web1.invalid' } }, tasks: djangoTasks() });
`);
    const result = await deploy(['provision', '-s', 'shop', '--yes'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("site shop has no admin account, which deploy provision needs: add admin: 'root' (or a user with sudo) to the site, or admins: { 'web1.invalid': 'root' } to the deployfile");
  });

  it('refuses a deployfile without a deploy task: the first deploy is part of provisioning', async () => {
    const dir = await project(`import { defineDeployfile, task } from 'deployfile';
export default defineDeployfile({ admins: { 'web1.invalid': 'root' }, sites: { shop: { host: 'web1.invalid' } }, tasks: { hello: task('Hi', async () => {}) } });
`);
    const result = await deploy(['provision', '-s', 'shop', '--yes'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/deploy provision ends with the site's first deploy, but .*deployfile\.ts has no deploy task/);
  });
});
