import { readdirSync } from 'node:fs';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findDeployfile, loadDeployfile } from '../../src/config/load.ts';
import { validateDeployfile } from '../../src/config/validate.ts';
import { DeployfileError } from '../../src/core/errors.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DeployfileError);
    return (error as Error).message;
  }
  throw new Error('expected a DeployfileError');
};

const tasks = { t: async () => {} };

describe('deployfile validation', () => {
  it('names the file, the path and the problem', () => {
    const text = message(() => validateDeployfile({ sites: { alleged: { host: 'web1', port: '22x' } }, tasks }, '/srv/deployfile.ts'));
    expect(text).toContain('/srv/deployfile.ts: invalid deployfile');
    expect(text).toContain('sites.alleged.port: expected a number, got "22x"');
  });

  it('takes sharedShell: false per site, and refuses true with what the setting means', () => {
    const loaded = validateDeployfile({ sites: { alleged: { host: 'web1', sharedShell: false }, other: { host: 'web1' } }, tasks }, 'd.ts');
    expect(loaded.sites.map((s) => [s.name, s.sharedShell])).toEqual([['alleged', false], ['other', undefined]]);
    const text = message(() => validateDeployfile({ sites: { alleged: { host: 'web1', sharedShell: true } }, tasks } as never, 'd.ts'));
    expect(text).toContain('sites.alleged.sharedShell: sharedShell can only be set to false (a session per command)');
  });

  it('lists every problem, not just the first', () => {
    const text = message(() => validateDeployfile({ sites: { a: { port: 70000 }, b: { host: 'x', user: 'no spaces' } }, tasks: { t: 'echo' } }, 'd.ts'));
    expect(text).toContain('sites.a.host: expected a string, got nothing');
    expect(text).toMatch(/sites\.a\.port: .*65535.*got 70000/);
    expect(text).toContain('sites.b.user: expected a Unix user name');
    expect(text).toContain('tasks.t: expected a task function or task({ run, description, once }), got "echo"');
  });

  it("resolves each site's admin account: its own admin, else the deployfile's admins for its host", () => {
    const loaded = validateDeployfile(
      { sites: { a: { host: 'web1' }, b: { host: 'web1', admin: 'ops' }, c: { host: 'web2' } }, admins: { web1: 'root' }, tasks },
      'd.ts',
    );
    expect(loaded.sites.map((s) => [s.name, s.admin])).toEqual([['a', 'root'], ['b', 'ops'], ['c', undefined]]);
    expect(message(() => validateDeployfile({ sites: { a: { host: 'web1', admin: 'not a user' } }, tasks }, 'd.ts'))).toContain('sites.a.admin: expected the Unix user name of an admin account');
  });

  it('catches a misspelt setting and suggests the right one', () => {
    expect(message(() => validateDeployfile({ sites: { a: { hots: 'x', host: 'y' } }, tasks }, 'd.ts'))).toContain('sites.a.hots: unknown setting (did you mean "host"?)');
  });

  it('refuses a group naming an unknown site', () => {
    expect(message(() => validateDeployfile({ sites: { a: { host: 'x' } }, groups: { web: ['a', 'zz'] }, tasks }, 'd.ts'))).toContain('groups.web.1: unknown site "zz"; sites are: a');
  });

  it('defaults user to the site name: one Unix account per site', () => {
    const loaded = validateDeployfile({ sites: { alleged: { host: 'web1' }, other: { host: 'web1', user: 'deploy' } }, tasks }, 'd.ts');
    expect(loaded.sites.map((s) => s.user)).toEqual(['alleged', 'deploy']);
  });

  it('says what to write when there is no default export', () => {
    expect(message(() => validateDeployfile(undefined, 'd.ts'))).toContain('has no default export');
  });
});

describe('loading deployfile.ts', () => {
  it('imports TypeScript at run time, with `deployfile` and the user\'s own modules resolving', async () => {
    const dir = await tempDir('deployfile-load-');
    await writeFile(join(dir, 'hosts.ts'), `export const WEB: string = 'web1.example.com';\n`);
    await writeFile(
      join(dir, 'deployfile.ts'),
      `import { defineDeployfile, task } from 'deployfile';\nimport { WEB } from './hosts';\ninterface Vars { greeting: string }\nexport default defineDeployfile<Vars>({ sites: { alleged: { host: WEB, vars: { greeting: 'hi' } } }, tasks: { hello: task('Say hi', async (c) => { await c.run(c.site.vars.greeting); }) } });\n`,
    );
    const loaded = await loadDeployfile(join(dir, 'deployfile.ts'));
    expect(loaded.sites[0]).toMatchObject({ name: 'alleged', host: 'web1.example.com', user: 'alleged', vars: { greeting: 'hi' } });
    expect(loaded.tasks.hello?.description).toBe('Say hi');
  });

  it('remembers a valid deployfile so the next start skips zod, yet still reports every error of an edited one', async () => {
    const dir = await tempDir('deployfile-load-');
    const cache = await tempDir('deployfile-cache-');
    const file = join(dir, 'deployfile.ts');
    const valid = `export default { sites: { alleged: { host: 'web1', port: 2222 } }, tasks: { hi: async () => {} } };\n`;
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = cache;
    try {
      await writeFile(file, valid);
      const first = await loadDeployfile(file);
      expect(readdirSync(join(cache, 'deployfile', 'valid'))).toHaveLength(1);
      const again = await loadDeployfile(file);
      expect(again.sites).toEqual(first.sites);
      expect(again.sites[0]).toMatchObject({ name: 'alleged', host: 'web1', port: 2222, user: 'alleged' });

      await writeFile(file, valid.replace('2222', "'2222x'"));
      for (let i = 0; i < 2; i++) {
        await expect(loadDeployfile(file)).rejects.toThrow('sites.alleged.port: expected a number, got "2222x"');
      }
      expect(readdirSync(join(cache, 'deployfile', 'valid'))).toHaveLength(1);
    } finally {
      process.env.XDG_CACHE_HOME = saved;
    }
  });

  it('refuses, before anything runs, a name the deployfile package does not export: file, line, closest export (exit 2)', async () => {
    const dir = await tempDir('deployfile-load-');
    const file = join(dir, 'deployfile.ts');
    await writeFile(
      file,
      [
        `import { defineDeployfile, type TaskFn } from 'deployfile';`,
        `import {`,
        `  djangoTasks,`,
        `  type DjangoVars,`,
        `  runLocal,`,
        `} from 'deployfile/tasks';`,
        `export default defineDeployfile<DjangoVars>({ sites: { a: { host: 'h' } }, tasks: { ...djangoTasks(), t: (async (c) => { await runLocal(c); }) as TaskFn } });`,
      ].join('\n'),
    );
    const error = await loadDeployfile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeployfileError);
    // Types (DjangoVars, TaskFn) are fine although they do not exist at run time; runLocal is not.
    expect((error as Error).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5: 'deployfile/tasks' has no export named runLocal; it exports: .*djangoTasks`));
    expect((error as Error).message.split('\n')).toHaveLength(1);
  });

  it('suggests the closest export for a misspelt one', async () => {
    const dir = await tempDir('deployfile-load-');
    await writeFile(join(dir, 'deployfile.ts'), `import { defineDeployfil } from 'deployfile';\nexport default defineDeployfil({ sites: {}, tasks: {} });\n`);
    await expect(loadDeployfile(join(dir, 'deployfile.ts'))).rejects.toThrow(/deployfile\.ts:1: 'deployfile' has no export named defineDeployfil \(did you mean defineDeployfile\?\)/);
  });

  it('says so when a deployfile has only named exports, and names them', async () => {
    const dir = await tempDir('deployfile-load-');
    await writeFile(join(dir, 'deployfile.ts'), `import { defineDeployfile } from 'deployfile';\nexport const config = defineDeployfile({ sites: { a: { host: 'h' } }, tasks: { t: async () => {} } });\n`);
    await expect(loadDeployfile(join(dir, 'deployfile.ts'))).rejects.toThrow(
      /deployfile\.ts: has no default export \(only named ones: config\)\. Write: export default defineDeployfile\(\{ sites, tasks \}\)/,
    );
  });

  it('reports a syntax error with the file name', async () => {
    const dir = await tempDir('deployfile-load-');
    await writeFile(join(dir, 'deployfile.ts'), 'export default {{{');
    await expect(loadDeployfile(join(dir, 'deployfile.ts'))).rejects.toThrow(/deployfile\.ts: could not be loaded/);
  });

  it('finds ./deployfile.ts, else the nearest one in a parent directory', async () => {
    const dir = await tempDir('deployfile-find-');
    await mkdir(join(dir, 'a', 'b'), { recursive: true });
    await writeFile(join(dir, 'deployfile.ts'), '');
    expect(findDeployfile(undefined, join(dir, 'a', 'b'))).toBe(join(dir, 'deployfile.ts'));
    expect(() => findDeployfile('nope.ts', dir)).toThrow(/nope\.ts: no such file/);
  });
});
