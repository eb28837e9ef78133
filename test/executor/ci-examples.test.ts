import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { djangoTasks } from '../../tasks/index.ts';

// The CI examples are copied into real pipelines: they must only use
// variables deploy reads and tasks the built-in library has.
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const sources = ['src/cli/options.ts', ...readdirSync(new URL('src/ssh/', root)).filter((f) => f.endsWith('.ts')).map((f) => `src/ssh/${f}`)].map(read).join('\n');
const examples = ['examples/ci/github-actions.yml', 'examples/ci/gitlab-ci.yml'];

describe('examples/ci', () => {
  for (const file of examples) {
    it(`${file} sets only DEPLOY_* variables that deploy reads`, () => {
      const text = read(file);
      const used = new Set([...text.matchAll(/\b(DEPLOY_[A-Z_]+)\b/g)].map((m) => m[1]!).filter((name) => name !== 'DEPLOY_SSH_KEY_B64'));
      expect(used.size).toBeGreaterThan(4);
      for (const name of used) expect(sources, `${file} uses ${name}, which deploy never reads`).toContain(name);
    });

    it(`${file} runs tasks the built-in library has, with --json to a file`, () => {
      const text = read(file);
      const runs = [...text.matchAll(/npx deploy run ([^\n]*?)(?: --json|$)/gm)].map((m) => m[1]!.trim().split(/\s+/));
      expect(runs.length).toBe(2);
      const known = Object.keys(djangoTasks());
      for (const tasks of runs) for (const task of tasks) expect(known).toContain(task);
      expect(text).toMatch(/--json > deploy-events\.jsonl/);
      expect(text).toContain('DEPLOY_SHARD');
      expect(text).not.toMatch(/DEPLOY_YES:/);
    });
  }

  it('documents every variable it uses in its README', () => {
    const readme = read('examples/ci/README.md');
    for (const name of ['DEPLOY_SSH_KEY', 'DEPLOY_SITE', 'DEPLOY_EXCLUDE', 'DEPLOY_SHARD', 'DEPLOY_PARALLEL', 'DEPLOY_BATCH', 'DEPLOY_MAX_FAILURES', 'DEPLOY_ON_FAILURE', 'DEPLOY_YES', 'DEPLOY_TIMEOUT', 'DEPLOY_JSON']) {
      expect(readme).toContain(`\`${name}\``);
      expect(sources).toContain(name);
    }
  });
});
