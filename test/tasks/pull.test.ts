import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortError } from '../../src/index.ts';
import { fetch } from '../../tasks/fetch.ts';
import { pull, SWITCH_SCRIPT } from '../../tasks/pull.ts';
import { PUSHED_PREFIX } from '../../tasks/push.ts';
import type { Fact } from '../../tasks/read-facts.ts';
import { factsAnswer } from '../helpers/facts.ts';
import { errorOf, scriptedContext } from '../helpers/task-context.ts';

const HEAD = '1111111111111111111111111111111111111111';
const NEW = '2222222222222222222222222222222222222222';
const CODE = 'cd /home/alleged/Sites/alleged && ';

/** The server's answers to fetch's questions about its checkout, by default a clean one one commit behind what was pushed. */
function checkout(options: { status?: string; ancestor?: number; production?: boolean; upstream?: string; upstreamName?: Partial<Fact> } = {}) {
  return factsAnswer({
    head: { stdout: `${HEAD}\n` },
    upstreamName: options.upstreamName ?? { stdout: 'origin/main\n' },
    revision: { stdout: `${options.upstream ?? NEW}\n` },
    branch: { stdout: 'main\n' },
    status: { stdout: options.status ?? '' },
    ancestor: { exitCode: options.ancestor ?? 0 },
    production: { exitCode: options.production === false ? 128 : 0, stderr: options.production === false ? 'fatal: path does not exist\n' : '' },
  });
}

describe('pull (with a fake server)', () => {
  it('after fetch, switches with one script, checks HEAD, and reports the revision and its working copy', async () => {
    const c = scriptedContext({ shared: new Map([[`${PUSHED_PREFIX}/src/shop`, { revision: NEW, branch: 'main', localDir: '/src/shop' }]]) });
    c.site.vars.localDir = '/src/shop';
    c.script('@@deployfile-fact', checkout(), 1);
    c.script('git rev-parse HEAD', { stdout: `${NEW}\n` });
    await fetch().run(c);
    await pull().run(c);
    const switched = c.recorder.lines.find((line) => line.includes('sh -c'));
    expect(switched).toContain(CODE);
    expect(switched).toMatch(/switch alleged 2{40}\b/);
    expect(c.recorder.reports).toEqual(['222222222222 from /src/shop']);
    expect(c.shared.get('deployfile.revision:alleged')).toBe(NEW);
    expect(c.recorder.logs.at(-1)).toBe(`switched 111111111111 -> ${NEW}, the revision pushed from /src/shop, with production settings`);
  });

  it('without fetch in the run, fetches and checks first', async () => {
    const c = scriptedContext();
    c.script('@@deployfile-fact', checkout(), 1);
    c.script('git rev-parse HEAD', { stdout: `${NEW}\n` });
    await pull().run(c);
    expect(c.recorder.lines[0]).toBe(`${CODE}git fetch --quiet`);
    expect(c.recorder.lines.some((line) => line.includes('sh -c'))).toBe(true);
  });
});

describe('pull and fetch in a dry run', () => {
  it('print one fetch and the switch to the pushed revision, and change nothing', async () => {
    const c = scriptedContext({ dryRun: true, shared: new Map([[`${PUSHED_PREFIX}${process.cwd()}`, { revision: NEW, branch: 'main', localDir: process.cwd() }]]) });
    await fetch().run(c);
    await pull().run(c);
    expect(c.recorder.lines.filter((line) => line.includes('git fetch'))).toHaveLength(1);
    expect(c.recorder.lines.at(-1)).toMatch(/sh -c .* switch alleged 2{40}/s);
    expect(c.recorder.logs).toEqual([`would check that the upstream is ${NEW}, pushed from .`]);
  });
});

describe('fetch: every check before anything changes', () => {
  function server(options: Parameters<typeof checkout>[0] = {}) {
    const c = scriptedContext({ site: { name: 'alleged', vars: { settings: 'example_site' } }, shared: new Map([[`${PUSHED_PREFIX}${process.cwd()}`, { revision: NEW, branch: 'main', localDir: process.cwd() }]]) });
    c.script('@@deployfile-fact', checkout(options));
    return c;
  }

  it('passes a clean, fast-forwardable checkout whose upstream is what was pushed, ignoring the generated settings.py', async () => {
    const c = server({ status: ' M example_site/settings.py\n' });
    await fetch().run(c);
    expect(c.recorder.logs).toEqual([`origin/main is at ${NEW}; the site is at ${HEAD}`]);
    expect(c.shared.get('deployfile.tasks.fetched:alleged')).toEqual({ head: HEAD, revision: NEW, upstream: 'origin/main' });
    // git fetch, then every question in one command: two SSH sessions, not eight.
    expect(c.recorder.lines).toHaveLength(2);
    expect(c.recorder.lines[0]).toBe(`${CODE}git fetch --quiet`);
    expect(c.recorder.lines[1]).toContain('git cat-file -e "$__df_rev":./example_site/settings_production.py');
  });

  it('stops with what git said when it cannot answer where the checkout is', async () => {
    const c = scriptedContext({ site: { name: 'alleged', vars: { settings: 'example_site' } } });
    c.script('@@deployfile-fact', factsAnswer({ head: { exitCode: 128, stderr: 'fatal: not a git repository\n' }, upstreamName: {}, revision: {}, branch: {}, status: {}, ancestor: {}, production: {} }));
    const error = await errorOf(fetch().run(c));
    expect(error.message).toContain('fetch: git rev-parse HEAD failed in /home/alleged/Sites/alleged: fatal: not a git repository. Nothing was changed on the server');
  });

  it.each([
    ['the upstream is not what this run pushed', { upstream: HEAD }, /is at 1{40}, but this run pushed 2{40} from \./],
    ['local edits on the server', { status: ' M example_site/settings.py\n M pages/views.py\n' }, /local edits on the server[\s\S]* M pages\/views\.py/],
    ['a diverged history', { ancestor: 1 }, /history diverged/],
    ['a branch that tracks no upstream', { upstreamName: { exitCode: 128, stderr: 'fatal: no upstream configured for branch main\n' } }, /has branch main checked out, which tracks no upstream/],
    ['no production settings in the new revision', { production: false }, /has no example_site\/settings_production\.py, so deploying it would serve the development settings/],
  ])('stops on %s, saying that nothing was changed', async (_name, options, message) => {
    const c = server(options);
    const error = await errorOf(fetch().run(c));
    expect(error).toBeInstanceOf(AbortError);
    expect(error.message).toMatch(message);
    expect(error.message).toContain('Nothing was changed on the server');
    expect(c.recorder.lines.filter((line) => /merge|checkout|sh -c/.test(line) && !line.includes('merge-base'))).toEqual([]);
  });
});

// The switch script itself, run by /bin/sh (dash on Debian) in a real checkout.
describe('the switch script, in a real git checkout', () => {
  let root: string;
  let code: string;
  const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 'T', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 'T', GIT_COMMITTER_EMAIL: 't@example.com' };
  const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env, encoding: 'utf8', stdio: 'pipe' }).trim();
  const write = (dir: string, file: string, text: string) => {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  };
  const settings = () => readFileSync(join(code, 'site/settings.py'), 'utf8');
  const runSwitch = (revision: string) => spawnSync('/bin/sh', ['-c', SWITCH_SCRIPT, 'switch', 'site', revision], { cwd: code, env, encoding: 'utf8' });
  let work: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'deployfile-switch-'));
    work = join(root, 'work');
    code = join(root, 'code');
    git(root, 'init', '-q', '--bare', '-b', 'main', join(root, 'origin.git'));
    git(root, 'init', '-q', '-b', 'main', work);
    write(work, 'site/settings.py', 'DEBUG = True  # development, v1\n');
    write(work, 'site/settings_production.py', 'DEBUG = False  # production, v1\n');
    write(work, 'app.py', 'v = 1\n');
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', 'v1');
    git(work, 'remote', 'add', 'origin', join(root, 'origin.git'));
    git(work, 'push', '-q', '-u', 'origin', 'main');
    git(root, 'clone', '-q', join(root, 'origin.git'), code);
    // As a deploy left it: production settings over the tracked development ones.
    write(code, 'site/settings.py', 'DEBUG = False  # production, v1\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function release(files: Record<string, string>): string {
    for (const [file, text] of Object.entries(files)) write(work, file, text);
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', 'next');
    git(work, 'push', '-q');
    git(code, 'fetch', '-q');
    return git(work, 'rev-parse', 'HEAD');
  }

  const leftovers = () => readdirSync(join(code, 'site')).filter((name) => name.includes('deployfile'));

  it('moves to the new revision with its production settings, even when the commit changes settings.py', () => {
    const next = release({ 'app.py': 'v = 2\n', 'site/settings.py': 'DEBUG = True  # development, v2\n', 'site/settings_production.py': 'DEBUG = False  # production, v2\n' });
    const result = runSwitch(next);
    expect(result.status, result.stderr).toBe(0);
    expect(git(code, 'rev-parse', 'HEAD')).toBe(next);
    expect(settings()).toBe('DEBUG = False  # production, v2\n');
    expect(readFileSync(join(code, 'app.py'), 'utf8')).toBe('v = 2\n');
    expect(leftovers()).toEqual([]);
  });

  it('when git refuses the merge, leaves the old code with its production settings', () => {
    const next = release({ 'app.py': 'v = 2\n', 'new.py': 'x = 1\n' });
    write(code, 'new.py', 'in the way\n'); // an untracked file the merge would overwrite
    const result = runSwitch(next);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('new.py');
    expect(git(code, 'rev-parse', 'HEAD')).not.toBe(next);
    expect(readFileSync(join(code, 'app.py'), 'utf8')).toBe('v = 1\n');
    expect(settings()).toBe('DEBUG = False  # production, v1\n');
    expect(leftovers()).toEqual([]);
  });

  it('refuses a revision without production settings before touching anything', () => {
    git(work, 'rm', '-q', 'site/settings_production.py');
    const next = release({ 'app.py': 'v = 2\n' });
    const result = runSwitch(next);
    expect(result.status).toBe(3);
    expect(readFileSync(join(code, 'app.py'), 'utf8')).toBe('v = 1\n');
    expect(settings()).toBe('DEBUG = False  # production, v1\n');
    expect(existsSync(join(code, 'site/settings_production.py'))).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  it('ignores TERM, INT and HUP, so Ctrl-C, a timeout or a lost connection cannot stop it half-way', () => {
    const next = release({ 'app.py': 'v = 2\n' });
    // The script's first line, then a TERM to itself where the switch would be under way.
    const script = SWITCH_SCRIPT.replace("trap '' INT TERM HUP", "trap '' INT TERM HUP; kill -TERM $$; kill -INT $$; kill -HUP $$");
    const result = spawnSync('/bin/sh', ['-c', script, 'switch', 'site', next], { cwd: code, env, encoding: 'utf8' });
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    expect(git(code, 'rev-parse', 'HEAD')).toBe(next);
    expect(settings()).toBe('DEBUG = False  # production, v1\n');
  });
});
