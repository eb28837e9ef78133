import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { deploy } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** A Django project as `django-admin startproject alleged .` leaves it, in a git checkout with an origin. */
async function djangoProject(settingsPackage = 'alleged'): Promise<string> {
  const dir = await tempDir('deployfile-init-');
  await writeFile(
    join(dir, 'manage.py'),
    `#!/usr/bin/env python\nimport os\nimport sys\n\ndef main():\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', '${settingsPackage}.settings')\n    from django.core.management import execute_from_command_line\n    execute_from_command_line(sys.argv)\n`,
  );
  execFileSync('git', ['init', '-q', dir]);
  execFileSync('git', ['-C', dir, 'remote', 'add', 'origin', 'git@git.example.com:me/alleged.git']);
  return dir;
}

describe('deploy init', () => {
  it('writes a deployfile for the project (settings package from manage.py, origin from git) that loads and type-checks', async () => {
    const dir = await djangoProject();
    const run = await deploy(['init', '--host', 'web1.example.com'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`wrote ${join(dir, 'deployfile.ts')}: 1 site (alleged) on web1.example.com, settings package alleged`);
    expect(run.stdout).toMatch(/Next:\n\s+npx deploy list.*\n\s+npx deploy run deploy --dry-run.*\n\s+npx deploy run deploy /);
    const source = readFileSync(join(dir, 'deployfile.ts'), 'utf8');
    expect(source).toContain('origin, git@git.example.com:me/alleged.git');

    // It loads: deploy list shows the site as alleged@web1.example.com and the built-in tasks.
    const list = await deploy(['list'], { cwd: dir });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/alleged\s+alleged@web1\.example\.com/);
    expect(list.stdout).toMatch(/\bdeploy\b/);

    // The editor's view: with the package installed, tsc finds no error in it.
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(REPO, join(dir, 'node_modules', 'deployfile'));
    expect(existsSync(join(dir, 'tsconfig.json'))).toBe(true);
    const tsc = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], (error, stdout, stderr) => resolve({ code: error ? 1 : 0, out: stdout + stderr }));
    });
    expect(tsc.out).toBe('');
    expect(tsc.code).toBe(0);
  }, 60_000);

  it('names the settings package for sites named otherwise, and keeps an existing tsconfig.json', async () => {
    const dir = await djangoProject('example_site');
    await writeFile(join(dir, 'tsconfig.json'), '{}\n');
    const run = await deploy(['init', '--host', 'web1', '--site', 'alleged,shop'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const source = readFileSync(join(dir, 'deployfile.ts'), 'utf8');
    expect(source).toContain(`alleged: { host: 'web1', vars: { settings: 'example_site' } },`);
    expect(source).toContain(`shop:    { host: 'web1', vars: { settings: 'example_site' } },`);
    expect(readFileSync(join(dir, 'tsconfig.json'), 'utf8')).toBe('{}\n');
    const list = await deploy(['list'], { cwd: dir });
    expect(list.stdout).toMatch(/shop\s+shop@web1:22/);
  });

  it('without a TTY and without --host, says what to pass and writes nothing (exit 2)', async () => {
    const dir = await djangoProject();
    const run = await deploy(['init'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no --host, and nobody at a terminal to ask: pass --host SERVER');
    expect(existsSync(join(dir, 'deployfile.ts'))).toBe(false);
  });

  it('never writes over a deployfile.ts without --force', async () => {
    const dir = await djangoProject();
    await writeFile(join(dir, 'deployfile.ts'), '// mine\n');
    const run = await deploy(['init', '--host', 'web1'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('deployfile.ts already exists; edit it, or run deploy init --force');
    expect(readFileSync(join(dir, 'deployfile.ts'), 'utf8')).toBe('// mine\n');
    expect((await deploy(['init', '--host', 'web1', '--force'], { cwd: dir })).code).toBe(0);
    expect(readFileSync(join(dir, 'deployfile.ts'), 'utf8')).toContain('djangoTasks()');
  });

  it('refuses a site name that cannot be a Unix user, naming it', async () => {
    const dir = await djangoProject();
    const run = await deploy(['init', '--host', 'web1', '--site', 'my site'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--site: "my site" cannot be a site name');
  });
});

describe('deploy init at a terminal', () => {
  it('asks for the server and the sites, offering the settings package as the site', async () => {
    const { initCommand } = await import('../../src/cli/init.ts');
    const dir = await djangoProject();
    const asked: [string, string | undefined][] = [];
    const answers = ['web2.example.com', 'alleged, blog'];
    let out = '';
    const sink = { write: (chunk: string) => ((out += chunk), true) } as unknown as NodeJS.WritableStream;
    const code = await initCommand({}, dir, sink, async (question, defaultAnswer) => {
      asked.push([question, defaultAnswer]);
      return answers.shift() as string;
    });
    expect(code).toBe(0);
    expect(asked).toEqual([
      ['Server (host name, or a Host of your ~/.ssh/config):', undefined],
      ['Sites on it, comma-separated (each is a Unix user there):', 'alleged'],
    ]);
    expect(out).toContain('2 sites (alleged, blog) on web2.example.com');
    expect(readFileSync(join(dir, 'deployfile.ts'), 'utf8')).toContain(`blog:    { host: 'web2.example.com', vars: { settings: 'alleged' } },`);
  });
});
