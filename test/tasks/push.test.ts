import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortError } from '../../src/index.ts';
import { push, pushedFor, PUSHED_PREFIX } from '../../tasks/push.ts';
import { displayDir } from '../../tasks/options.ts';
import { errorOf, scriptedContext } from '../helpers/task-context.ts';

// Real repositories: a bare "origin" and a clone tracking it, as on an operator's machine.
let root: string;
let work: string;
let origin: string;

const gitEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env: gitEnv, encoding: 'utf8', stdio: 'pipe' }).trim();

function commit(file: string, content: string, message: string): string {
  writeFileSync(join(work, file), content);
  git(work, 'add', file);
  git(work, 'commit', '-q', '-m', message);
  return git(work, 'rev-parse', 'HEAD');
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'deployfile-push-'));
  origin = join(root, 'origin.git');
  work = join(root, 'work');
  git(root, 'init', '-q', '--bare', '-b', 'main', origin);
  git(root, 'init', '-q', '-b', 'main', work);
  git(work, 'remote', 'add', 'origin', origin);
  commit('app.py', 'print(1)\n', 'first');
  git(work, 'push', '-q', '-u', 'origin', 'main');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

const originHead = (branch = 'main') => git(origin, 'rev-parse', branch);

describe('push', () => {
  it('pushes the branch to its upstream and tells the site what was pushed from its working copy', async () => {
    const definition = push({ localDir: work });
    expect(definition.once).toBeFalsy();
    const sha = commit('app.py', 'print(2)\n', 'second');
    const c = scriptedContext();
    await definition.run(c);
    expect(originHead()).toBe(sha);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(pushedFor(c, { localDir: work })).toEqual({ revision: sha, branch: 'main', localDir: work });
    expect(c.recorder.logs).toEqual([`pushed main at ${sha} to origin/main from ${displayDir(work)}`]);
  });

  it('pushes each working copy once however many sites deploy it; a site of another working copy gets its own push', async () => {
    const sha = commit('app.py', 'print(2)\n', 'second');
    // Another project: its own origin and working copy.
    git(root, 'clone', '-q', '--bare', origin, join(root, 'other.git'));
    const second = join(root, 'second');
    git(root, 'clone', '-q', join(root, 'other.git'), second);
    const theirs = git(second, 'rev-parse', 'HEAD');
    const definition = push({ localDir: (site) => (site.name === 'charlie' ? second : work) });
    // One run: the sites share the run's values and its run-once work, as the executor gives them.
    const alleged = scriptedContext({ site: { name: 'alleged' } });
    const [bravo, charlie] = ['bravo', 'charlie'].map((name) => scriptedContext({ site: { name }, shared: alleged.shared, recorder: alleged.recorder }));
    await Promise.all([alleged, bravo, charlie].map((c) => definition.run(c!)));
    expect(originHead()).toBe(sha);
    expect(alleged.recorder.logs.filter((line) => line.startsWith('pushed main')).sort()).toEqual(
      [`pushed main at ${sha} to origin/main from ${displayDir(work)}`, `pushed main at ${theirs} to origin/main from ${displayDir(second)}`].sort(),
    );
    expect(pushedFor(bravo!, { localDir: work })?.localDir).toBe(work);
    expect(pushedFor(charlie!, { localDir: second })).toEqual({ revision: theirs, branch: 'main', localDir: second });
  });

  it('refuses uncommitted changes, naming the files and how to fix it, and pushes nothing', async () => {
    const before = originHead();
    commit('app.py', 'print(2)\n', 'second');
    writeFileSync(join(work, 'app.py'), 'print(3)\n');
    const c = scriptedContext();
    const error = await errorOf(push({ localDir: work }).run(c));
    expect(error).toBeInstanceOf(AbortError);
    const message = error.message;
    expect(message).toContain('uncommitted changes');
    expect(message).toContain(' M app.py');
    expect(message).toContain('git commit -a');
    expect(message).toContain('git stash');
    expect(originHead()).toBe(before);
    expect([...c.shared.keys()].filter((key) => key.startsWith(PUSHED_PREFIX))).toEqual([]);
  });

  it('refuses staged but uncommitted changes too', async () => {
    writeFileSync(join(work, 'new.py'), 'x = 1\n');
    git(work, 'add', 'new.py');
    await expect(push({ localDir: work }).run(scriptedContext())).rejects.toThrow(/uncommitted changes[\s\S]*A  new\.py/);
  });

  it('pushes with untracked files around, warning that they are not deployed', async () => {
    const sha = commit('app.py', 'print(2)\n', 'second');
    writeFileSync(join(work, 'notes.txt'), 'scratch\n');
    const c = scriptedContext();
    await push({ localDir: work }).run(c);
    expect(originHead()).toBe(sha);
    expect(c.recorder.warnings).toEqual(['push: untracked files are not deployed: notes.txt']);
  });

  it('refuses a branch without upstream and says how to set one', async () => {
    git(work, 'switch', '-q', '-c', 'feature/login');
    commit('app.py', 'print(2)\n', 'on a branch');
    const run = push({ localDir: work }).run(scriptedContext());
    await expect(run).rejects.toBeInstanceOf(AbortError);
    await expect(run).rejects.toThrow('push: branch feature/login has no upstream, so there is nowhere to push it. Set one with: git push -u origin feature/login');
  });

  it('refuses a detached HEAD', async () => {
    git(work, 'switch', '-q', '--detach', 'HEAD');
    await expect(push({ localDir: work }).run(scriptedContext())).rejects.toThrow(/HEAD is detached/);
  });

  it("reports git's refusal when the remote has moved on", async () => {
    const other = join(root, 'other');
    git(root, 'clone', '-q', origin, other);
    writeFileSync(join(other, 'app.py'), 'print("theirs")\n');
    git(other, 'commit', '-q', '-am', 'theirs');
    git(other, 'push', '-q');
    commit('app.py', 'print("mine")\n', 'mine');
    const run = push({ localDir: work }).run(scriptedContext());
    await expect(run).rejects.toBeInstanceOf(AbortError);
    await expect(run).rejects.toThrow(/git push origin HEAD:refs\/heads\/main failed:[\s\S]*rejected/);
  });

  it('in a dry run pushes nothing and says what it would push', async () => {
    const before = originHead();
    const sha = commit('app.py', 'print(2)\n', 'second');
    const c = scriptedContext({ dryRun: true });
    await push({ localDir: work }).run(c);
    expect(originHead()).toBe(before);
    expect(c.recorder.logs).toEqual([`would push main at ${sha} to origin/main (dry run: nothing pushed)`]);
  });

  it('says when run outside a git repository', async () => {
    const plain = mkdtempSync(join(tmpdir(), 'deployfile-nogit-'));
    try {
      await expect(push({ localDir: plain }).run(scriptedContext())).rejects.toThrow(/is not a git repository/);
    } finally {
      rmSync(plain, { recursive: true, force: true });
    }
  });
});
