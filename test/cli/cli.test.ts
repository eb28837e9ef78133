import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

let dir: string;

beforeAll(async () => {
  dir = await tempDir('deployfile-cli-');
  await writeFile(
    join(dir, 'deployfile.ts'),
    `import { defineDeployfile, task } from 'deployfile';
export default defineDeployfile({
  sites: { alleged: { host: 'web1.example.com' }, bravo: { host: 'web2.example.com', port: 2222 } },
  groups: { web: ['alleged', 'bravo'] },
  tasks: {
    hello: task('Say hello locally', async (c) => { await c.local('echo hello from ' + c.site.name); }),
    remote: task('Touch a file remotely', async (c) => { await c.cd('~/Sites').run(\`touch "\${c.site.name}.txt"\`); }),
    ask: async (c) => { if (!(await c.confirm('Really?'))) c.abort('said no'); await c.local('echo went ahead'); },
    fails: async (c) => { await c.local('echo broken >&2; exit 3'); },
    noisy: async (c) => { await c.local('seq 1 20000'); await c.local('touch noisy-done'); },
  },
});
`,
  );
});

describe('deploy --help and --version', () => {
  it('teaches the commands and documents the exit codes', async () => {
    const help = await deploy(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('deploy run deploy --dry-run');
    expect(help.stdout).toMatch(/130\s+interrupted/);
    const run = await deploy(['run', '--help']);
    expect(run.stdout).toContain('--on-failure <mode>');
    expect(run.stdout).toContain('Without a TTY');
  });

  it('prints the package version', async () => {
    expect((await deploy(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('a bad flag or unknown command is a usage error, exit 2', async () => {
    expect((await deploy(['frobnicate'])).code).toBe(2);
    expect((await deploy(['run', 'hello', '--on-failure', 'maybe'], { cwd: dir })).code).toBe(2);
  });
});

describe('deploy list', () => {
  it('shows tasks with descriptions and sites as user@host:port', async () => {
    const { code, stdout } = await deploy(['list'], { cwd: dir });
    expect(code).toBe(0);
    expect(stdout).toMatch(/hello\s+Say hello locally/);
    expect(stdout).toContain('alleged@web1.example.com:22');
    expect(stdout).toContain('bravo@web2.example.com:2222');
    expect(stdout).toContain('web: alleged, bravo');
  });
});

describe('deploy run', () => {
  it('an unknown task lists the known ones and suggests the closest, exit 2', async () => {
    const { code, stderr } = await deploy(['run', 'helo'], { cwd: dir });
    expect(code).toBe(2);
    expect(stderr).toContain('unknown task "helo" (did you mean "hello"?)');
    expect(stderr).toContain('Tasks: hello, remote, ask, fails');
  });

  it('an unknown site lists sites and groups, exit 2', async () => {
    const { code, stderr } = await deploy(['run', 'hello', '--site', 'alleget'], { cwd: dir });
    expect(code).toBe(2);
    expect(stderr).toContain('unknown site "alleget" (did you mean "alleged"?)');
    expect(stderr).toContain('groups: web');
  });

  it('a broken deployfile is exit 2 and names the problem', async () => {
    const bad = await tempDir('deployfile-bad-');
    await writeFile(join(bad, 'deployfile.ts'), `export default { sites: { a: { host: 'x', port: '22x' } }, tasks: {} };\n`);
    const { code, stderr } = await deploy(['run', 'x'], { cwd: bad });
    expect(code).toBe(2);
    expect(stderr).toContain('sites.a.port: expected a number, got "22x"');
  });

  it('runs on the selected sites and exits 0', async () => {
    const { code, stdout } = await deploy(['run', 'hello', '-s', 'bravo'], { cwd: dir });
    expect(code).toBe(0);
    expect(stdout).toContain('[bravo]   hello from bravo');
    expect(stdout).not.toContain('[alleged]');
  });

  it('--dry-run prints the exact composed commands and connects to nothing', async () => {
    const { code, stdout } = await deploy(['run', 'remote', '--dry-run'], { cwd: dir });
    expect(code).toBe(0);
    expect(stdout).toContain('[alleged] $ cd ~/Sites && touch "alleged.txt"');
    expect(stdout).toContain('[bravo] $ cd ~/Sites && touch "bravo.txt"');
  });

  it('a failed command exits 1 and says which site, command and exit code', async () => {
    const { code, stdout } = await deploy(['run', 'fails', '-s', 'alleged'], { cwd: dir });
    expect(code).toBe(1);
    expect(stdout).toContain('Command failed with exit code 3 locally (for site alleged): echo broken >&2; exit 3');
    expect(stdout).toMatch(/alleged\s+failed at fails: echo broken >&2; exit 3/);
  });

  it('without a TTY, c.confirm is answered no (exit 1) and never waits; --yes answers yes', async () => {
    const no = await deploy(['run', 'ask', '-s', 'alleged'], { cwd: dir, timeoutMs: 15_000 });
    expect(no.code).toBe(1);
    expect(no.stdout).toContain('? Really? no (answered by policy');
    const yes = await deploy(['run', 'ask', '-s', 'alleged', '--yes'], { cwd: dir, timeoutMs: 15_000 });
    expect(yes.code).toBe(0);
    expect(yes.stdout).toContain('went ahead');
    const env = await deploy(['run', 'ask', '-s', 'alleged'], { cwd: dir, env: { DEPLOY_YES: '1' }, timeoutMs: 15_000 });
    expect(env.code).toBe(0);
  });
});

describe('output into a pipe whose reader leaves (| head)', () => {
  const piped = (command: string): Promise<{ stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile('bash', ['-c', `${command}; echo "exit \${PIPESTATUS[0]}" >&2`], { cwd: dir, env: { ...process.env, NO_COLOR: '1', CI: '' } }, (_error, stdout, stderr) => resolve({ stdout, stderr }));
    });
  const bin = JSON.stringify(join(import.meta.dirname, '../../bin/deploy.js'));

  it('--help | head -2 ends quietly, exit 0', async () => {
    const { stdout, stderr } = await piped(`node ${bin} --help | head -2`);
    expect(stdout.split('\n')[0]).toBe('Usage: deploy [options] [command]');
    expect(stderr).toBe('exit 0\n');
  });

  it('a run piped into head -1 finishes its work, prints no EPIPE trace, and exits with its own code', async () => {
    for (const json of [false, true]) {
      const { stdout, stderr } = await piped(`rm -f noisy-done; node ${bin} run noisy -s alleged${json ? ' --json' : ''} | head -1`);
      expect(stdout.trim().split('\n')).toHaveLength(1);
      expect(stderr).not.toMatch(/EPIPE|Error/);
      expect(stderr).toMatch(/exit 0\n$/);
      // The deploy was not cut short for losing its reader: its last command ran.
      expect(existsSync(join(dir, 'noisy-done')), json ? '--json' : 'plain').toBe(true);
    }
  });
});
