// The built `deploy` binary as a CI pipeline runs it: stdin a pipe that
// stays open (so anything that reads it would hang), no TTY, JSON lines on
// stdout. Sites only run local commands, so no SSH is needed.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeployEvent, type SiteSummary } from '../../src/core/event-schema.ts';
import { inShard } from '../../src/executor/select.ts';
import { deploy } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

/**
 * Each CLI run is killed after this (so a run waiting for input fails rather
 * than hangs); generous, since the machine may be busy with other test files.
 */
const CLI_MS = 30_000;
/** Tests that start several CLI runs get longer than vitest's default. */
const SLOW = { timeout: 120_000 };

const SITES = ['shop-berlin', 'shop-paris', 'shop-rome', 'blog', 'wiki', 'api'];
let dir: string;

beforeAll(async () => {
  dir = await tempDir('deployfile-ci-');
  // lock: false: these tasks never touch the servers, so they need no deploy lock.
  await writeFile(
    join(dir, 'deployfile.ts'),
    `import { defineDeployfile, task } from 'deployfile';
const sites = Object.fromEntries(${JSON.stringify(SITES)}.map((name) => [name, { host: '127.0.0.1', port: 1 }]));
export default defineDeployfile({
  sites,
  groups: { shops: ['shop-berlin', 'shop-paris', 'shop-rome'], content: ['blog', 'wiki'] },
  tasks: {
    build: task({ description: 'Build once', once: true, lock: false, run: async (c) => { await c.local('echo built'); } }),
    deploy: task('Deploy', async (c) => {
      await c.invoke('build');
      await c.local(\`echo deploying \${c.site.name}\`);
      if (c.site.name === 'shop-paris') await c.local('echo migration failed >&2; exit 3');
      await c.local('echo done');
    }, { lock: false }),
    ask: task('Ask first', async (c) => {
      if (await c.confirm(\`Deploy \${c.site.name}?\`)) await c.local('echo yes');
      await c.local('exit 5');
      await c.local('echo after the failure');
    }, { lock: false }),
  },
});
`,
  );
});

/** The events of a --json run: every stdout line must be one event that the schema accepts. */
function events(stdout: string): DeployEvent[] {
  const lines = stdout.split('\n').filter((line) => line !== '');
  expect(lines.length).toBeGreaterThan(0);
  return lines.map((line) => DeployEvent.parse(JSON.parse(line)));
}

function runEnd(list: DeployEvent[]) {
  const last = list.at(-1);
  if (last?.type !== 'run:end') throw new Error(`last event is ${last?.type}, not run:end`);
  return last;
}

const statuses = (summary: SiteSummary[]) => Object.fromEntries(summary.map((row) => [row.site, row.status]));

describe('--json: JSON lines on stdout, people on stderr', SLOW, () => {
  it('streams schema-valid events whose summary matches what happened, exit 1 naming the failed site', async () => {
    const result = await deploy(['run', 'deploy', '--json', '--parallel', '6'], { cwd: dir, timeoutMs: CLI_MS });
    expect(result.code).toBe(1);
    const list = events(result.stdout);
    const end = runEnd(list);
    expect(end).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(statuses(end.summary)).toEqual({ 'shop-berlin': 'ok', 'shop-paris': 'failed', 'shop-rome': 'ok', blog: 'ok', wiki: 'ok', api: 'ok' });
    expect(end.summary.find((row) => row.site === 'shop-paris')).toMatchObject({ failedTask: 'deploy', failedCommand: 'echo migration failed >&2; exit 3' });
    // The summary agrees with the site:end events, and every selected site has one.
    const ends = list.filter((e) => e.type === 'site:end');
    expect(ends.map((e) => e.site).sort()).toEqual([...SITES].sort());
    for (const e of ends) expect(end.summary.find((row) => row.site === e.site)?.status).toBe(e.status);
    // The run-once task ran once.
    expect(list.filter((e) => e.type === 'task:start' && e.task === 'build')).toHaveLength(1);
    // The failed command's end carries its exit code; its stderr came through as output.
    const failing = list.find((e) => e.type === 'command:start' && e.command.includes('migration failed'));
    const failingEnd = list.find((e) => e.type === 'command:end' && failing?.type === 'command:start' && e.commandId === failing.commandId);
    expect(failingEnd).toMatchObject({ exitCode: 3, ok: false, site: 'shop-paris' });
    // One run id, versioned, timestamped.
    expect(new Set(list.map((e) => e.runId)).size).toBe(1);
    // Human output went to stderr: [site] lines and the summary.
    expect(result.stderr).toContain('[shop-paris]');
    expect(result.stderr).toMatch(/Summary: 5 ok, 1 failed \(6 sites\)/);
    expect(result.stderr).toMatch(/shop-paris\s+failed at deploy: echo migration failed >&2; exit 3/);
  });

  it('DEPLOY_JSON=1 does the same from the environment', async () => {
    const result = await deploy(['run', 'deploy', '-s', 'blog'], { cwd: dir, env: { DEPLOY_JSON: '1' }, timeoutMs: CLI_MS });
    expect(result.code).toBe(0);
    expect(runEnd(events(result.stdout)).summary.map((row) => row.site)).toEqual(['blog']);
  });
});

describe('without a TTY nothing waits for input', SLOW, () => {
  it('confirm questions and failed commands on six sites at once are answered by policy (stdin stays open)', async () => {
    // deploy() leaves stdin an open pipe: a prompt reading it would hang until the helper's timeout fails the test.
    const result = await deploy(['run', 'ask', '--json', '--parallel', '6'], { cwd: dir, timeoutMs: CLI_MS });
    expect(result.code).toBe(1);
    const prompts = events(result.stdout).filter((e) => e.type === 'prompt');
    expect(prompts.filter((p) => p.kind === 'confirm')).toHaveLength(6);
    expect(prompts.filter((p) => p.kind === 'failure')).toHaveLength(6);
    for (const p of prompts) expect(p.by).toBe('policy');
  });

  it('policy from the environment: DEPLOY_YES and DEPLOY_ON_FAILURE=continue', async () => {
    const result = await deploy(['run', 'ask', '--json', '-s', 'api'], { cwd: dir, env: { DEPLOY_YES: 'true', DEPLOY_ON_FAILURE: 'continue' }, timeoutMs: CLI_MS });
    expect(result.code).toBe(0);
    const list = events(result.stdout);
    expect(list.filter((e) => e.type === 'prompt').map((e) => e.type === 'prompt' && [e.kind, e.answer])).toEqual([
      ['confirm', 'yes'],
      ['failure', 'skip'],
    ]);
    expect(list.some((e) => e.type === 'output' && e.chunk.includes('after the failure'))).toBe(true);
    // ok, but not silently: the summary and its JSON row say what the site went on past.
    expect(runEnd(list).summary[0]).toMatchObject({ site: 'api', status: 'ok', failuresSkipped: ['exit 5 (failed with exit code 5)'] });
    expect(result.stderr).toMatch(/api\s+ok, 1 failure skipped: exit 5 \(failed with exit code 5\)/);
  });

  it('with CI set: plain [site] lines, no spinners or cursor movement, and the summary at the end', async () => {
    const result = await deploy(['run', 'deploy', '-s', 'content'], { cwd: dir, env: { CI: 'true' }, timeoutMs: CLI_MS });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(/\x1b\[/);
    expect(result.stdout).toContain('[blog] ▶ deploy');
    expect(result.stdout).toContain('[wiki]   deploying wiki');
    expect(result.stdout.trimEnd().split('\n').at(-1)).toMatch(/^done in .* \(exit 0\)$/);
    expect(result.stdout).toMatch(/Summary: 2 ok \(2 sites\)\n\s+site\s+result\s+duration\n\s+blog\s+ok/);
  });
});

describe('selecting sites from the command line and the environment', SLOW, () => {
  const selected = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const result = await deploy(['run', 'deploy', '--json', ...args], { cwd: dir, env, timeoutMs: CLI_MS });
    return { code: result.code, sites: result.code === 2 || result.stdout === '' ? [] : runEnd(events(result.stdout)).summary.map((row) => row.site), stderr: result.stderr };
  };

  it('globs, groups and --exclude', async () => {
    expect((await selected(['--site', 'shop-*', '--exclude', 'shop-paris'])).sites).toEqual(['shop-berlin', 'shop-rome']);
    expect((await selected(['-s', 'content,api'])).sites).toEqual(['blog', 'wiki', 'api']);
    expect((await selected([], { DEPLOY_SITE: 'shops', DEPLOY_EXCLUDE: 'shop-p*' })).sites).toEqual(['shop-berlin', 'shop-rome']);
  });

  it('a selection that matches nothing is exit 2, listing the sites and groups', async () => {
    const { code, stderr } = await selected(['--site', 'staging-*']);
    expect(code).toBe(2);
    expect(stderr).toContain("--site 'staging-*' matches no site or group");
    expect(stderr).toContain(`Sites: ${SITES.join(', ')}; groups: shops (shop-berlin, shop-paris, shop-rome), content (blog, wiki)`);
    expect((await selected(['--exclude', 'bolg'])).stderr).toContain('unknown site "bolg" (did you mean "blog"?)');
  });

  it('--shard I/N: the slices of a CI matrix cover every site exactly once', async () => {
    const slices = await Promise.all([1, 2, 3].map((i) => selected(['--shard', `${i}/3`, '--exclude', 'shop-paris'])));
    const expected = SITES.filter((s) => s !== 'shop-paris');
    expect(slices.flatMap((s) => s.sites).sort()).toEqual([...expected].sort());
    slices.forEach((slice, i) => expect(slice.sites).toEqual(expected.filter((name) => inShard(name, { index: i + 1, count: 3 }))));
  });

  it('an empty shard does nothing and succeeds; a bad one is exit 2', async () => {
    const index = Array.from({ length: 20 }, (_, i) => i + 1).find((i) => !inShard('api', { index: i, count: 20 }))!;
    const none = await deploy(['run', 'deploy', '-s', 'api', '--shard', `${index}/20`], { cwd: dir, timeoutMs: CLI_MS });
    expect(none.code).toBe(0);
    expect(none.stderr).toContain(`shard ${index}/20 holds none of the selected sites; nothing to do`);
    expect(none.stdout).not.toContain('built');
    const bad = await deploy(['run', 'deploy', '--shard', '4/3'], { cwd: dir, timeoutMs: CLI_MS });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--shard / DEPLOY_SHARD: "4/3": expected I/N with 1 <= I <= N');
  });

  it('--max-failures and --batch from the command line and DEPLOY_* variables', async () => {
    // shop-paris is second: with batches of one, nothing after it starts.
    const rows = await deploy(['run', 'deploy', '--json'], { cwd: dir, env: { DEPLOY_BATCH: '1' }, timeoutMs: CLI_MS });
    expect(statuses(runEnd(events(rows.stdout)).summary)).toEqual({ 'shop-berlin': 'ok', 'shop-paris': 'failed', 'shop-rome': 'not-started', blog: 'not-started', wiki: 'not-started', api: 'not-started' });
    const limited = await deploy(['run', 'deploy', '--json', '--parallel', '1', '--max-failures', '1'], { cwd: dir, timeoutMs: CLI_MS });
    expect(statuses(runEnd(events(limited.stdout)).summary)['shop-rome']).toBe('not-started');
    const bad = await deploy(['run', 'deploy', '--max-failures', '0'], { cwd: dir, env: {}, timeoutMs: CLI_MS });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--max-failures / DEPLOY_MAX_FAILURES: must be at least 1');
    const badEnv = await deploy(['run', 'deploy'], { cwd: dir, env: { DEPLOY_PARALLEL: 'lots' }, timeoutMs: CLI_MS });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain('--parallel / DEPLOY_PARALLEL');
  });
});
