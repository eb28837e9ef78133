import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';

// A real virtualenv (ensurepip) on a busy machine takes a while.
const TIMEOUT_MS = 120_000;

function hasDjango(path: string): boolean {
  return spawnSync('python3', ['-c', 'import django'], { env: { ...process.env, PATH: path }, stdio: 'ignore' }).status === 0;
}

// The demo takes one of two paths depending on the machine's python3: run
// each one this machine can offer (Debian's /usr/bin/python3 often has
// Django where a pyenv or Homebrew python3 first on PATH has not).
const ambient = process.env.PATH ?? '';
const paths = new Map<'real Django' | 'stand-ins', string>();
for (const path of [ambient, `/usr/bin:${ambient}`]) {
  const kind = hasDjango(path) ? 'real Django' : 'stand-ins';
  if (!paths.has(kind)) paths.set(kind, path);
}

function parse(run: CliRun) {
  const out = run.stdout;
  return {
    root: /^in (\/\S+deployfile-demo-\w+):$/m.exec(out)?.[1],
    committed: /^committed ([0-9a-f]{40}) in the working clone$/m.exec(out)?.[1],
    served: /now serves revision ([0-9a-f]{40})/.exec(out)?.[1],
  };
}

describe.concurrent('deploy demo', () => {
  for (const [kind, path] of paths) {
    test(`ships the commit it made to the throwaway site and serves it, then removes everything (${kind})`, async () => {
      const run = await deploy(['demo'], { env: { PATH: path }, timeoutMs: TIMEOUT_MS });
      const all = `${run.stdout}\n${run.stderr}`;
      expect(run.code, all).toBe(0);

      const { root, committed, served } = parse(run);
      expect(committed, all).toBeDefined();
      expect(served, all).toBe(committed);
      // The deploy's own steps, shown live by the plain view, ending in the real reload check.
      for (const step of ['test', 'push', 'fetch', 'installRequirements', 'pull', 'collectstatic', 'touchVassalIni']) {
        expect(run.stdout, all).toContain(`▶ ${step}`);
      }
      expect(run.stdout).toContain('$ git fetch --quiet');
      expect(run.stdout).toMatch(new RegExp(`switched [0-9a-f]{12} -> ${committed}, the revision pushed from .*, with production settings`));
      expect(run.stdout).toMatch(/demo is back after [\d.]+s: uWSGI restarted \(log\); HTTP\/1\.1 200 OK/);
      // What is faked says so.
      expect(run.stdout).toContain('stand-ins     uWSGI: an emperor inside this process');
      if (kind === 'real Django') {
        expect(run.stdout).toMatch(/Ran \d+ tests/);
        expect(run.stdout).toMatch(/1 static file copied to/);
        expect(run.stdout).not.toContain('deployfile demo stand-in (Django is not installed');
      } else {
        expect(run.stdout).toContain('tests: deployfile demo stand-in (Django is not installed on this machine)');
        expect(run.stdout).toContain('Requirement already satisfied: Django>=3.2,<6');
        expect(run.stdout).toContain('collectstatic: deployfile demo stand-in');
      }
      expect(root, all).toBeDefined();
      expect(existsSync(root as string)).toBe(false);
      // No hint points at what is gone: the removed paths, the stopped socket.
      expect(run.stdout).not.toMatch(/curl --unix-socket|target dir /);
    }, TIMEOUT_MS);
  }

  test('--keep leaves the target, the clones and the log, and says the socket is dead', async () => {
    const run = await deploy(['demo', '--keep'], { timeoutMs: TIMEOUT_MS });
    const { root, committed } = parse(run);
    try {
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(run.stdout).toContain('The stand-in emperor stopped with the demo, so the socket no longer answers.');
      expect(run.stdout).toMatch(/target dir\s+\S+\/home\/demo\/Sites\/demo/);
      expect(run.stdout).not.toContain('curl --unix-socket');
      const home = join(root as string, 'home', 'demo');
      const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: join(home, 'Sites', 'demo'), encoding: 'utf8' }).stdout.trim();
      expect(head).toBe(committed);
      expect(existsSync(join(home, 'log', 'demo.log'))).toBe(true);
      expect(existsSync(join(home, 'run', 'demo.sock'))).toBe(false);
    } finally {
      if (root) await rm(root, { recursive: true, force: true });
    }
  }, TIMEOUT_MS);
});
