// Issue 11: an explicitly empty selection, and a zero --timeout/--deadline,
// are usage errors (exit 2) before anything runs, never "every site" or
// "no limit". The built binary, local-only tasks: what ran leaves a file.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deploy } from '../helpers/cli.ts';

let dir: string;
const ran = () => join(dir, 'ran');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deployfile-empty-'));
  await writeFile(
    join(dir, 'deployfile.ts'),
    `import { defineDeployfile } from 'deployfile';
export default defineDeployfile({
  sites: { alleged: { host: 'web1.example.com' }, bravo: { host: 'web2.example.com' } },
  tasks: { mark: async (c) => { await c.local('echo ' + c.site.name + ' >> ran'); } },
});
`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await rm(ran(), { force: true });
});

const run = (args: string[], env: NodeJS.ProcessEnv = {}) => deploy(['run', 'mark', ...args], { cwd: dir, env: { DEPLOY_SITE: undefined, DEPLOY_EXCLUDE: undefined, DEPLOY_TIMEOUT: undefined, DEPLOY_DEADLINE: undefined, ...env } });

describe('an explicitly empty selection is a usage error, exit 2, and nothing runs', () => {
  it.each([
    [['-s', ''], '-s/--site "" names no site'],
    [['--site='], '-s/--site "" names no site'],
    [['-s', ','], '-s/--site "," names no site'],
    [['-s', ' , '], '-s/--site " , " names no site'],
  ])('%j', async (args, message) => {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stderr).toContain(`deploy: ${message}: name sites, groups or globs (e.g. -s web1 or -s 'shop-*'), or leave -s/--site out to run on every site`);
    expect(stdout).toBe('');
    expect(existsSync(ran())).toBe(false);
  });

  it("-x '' names the exclude flag", async () => {
    const { code, stderr } = await run(['-x', '']);
    expect(code).toBe(2);
    expect(stderr).toContain('deploy: -x/--exclude "" names no site: name sites, groups or globs to leave out (e.g. -x shop-test), or leave -x/--exclude out to leave none out');
    expect(existsSync(ran())).toBe(false);
  });

  it('DEPLOY_SITE or DEPLOY_EXCLUDE holding only commas or spaces is refused the same way', async () => {
    const site = await run([], { DEPLOY_SITE: ',' });
    expect(site.code).toBe(2);
    expect(site.stderr).toContain('deploy: DEPLOY_SITE "," names no site: name sites, groups or globs (e.g. -s web1 or -s \'shop-*\'), or unset DEPLOY_SITE to run on every site');
    const exclude = await run([], { DEPLOY_EXCLUDE: ' ' });
    expect(exclude.code).toBe(2);
    expect(exclude.stderr).toContain('deploy: DEPLOY_EXCLUDE " " names no site');
    expect(existsSync(ran())).toBe(false);
  });

  it('DEPLOY_SITE set to the empty string counts as not set (every site), and says so', async () => {
    const { code, stderr } = await run([], { DEPLOY_SITE: '', DEPLOY_EXCLUDE: '' });
    expect(code).toBe(0);
    expect(stderr).toContain('deploy: DEPLOY_SITE is set but empty: taken as not set (every site)');
    expect(stderr).toContain('deploy: DEPLOY_EXCLUDE is set but empty: taken as not set (no site left out)');
    expect(readFileSync(ran(), 'utf8').trim().split('\n').sort()).toEqual(['alleged', 'bravo']);
  });

  it('a flag wins over an empty DEPLOY_SITE, silently', async () => {
    const { code, stderr } = await run(['-s', 'bravo'], { DEPLOY_SITE: '' });
    expect(code).toBe(0);
    expect(stderr).not.toContain('DEPLOY_SITE');
    expect(readFileSync(ran(), 'utf8').trim()).toBe('bravo');
  });
});

describe('a zero duration is a usage error, never "no limit"', () => {
  it.each([
    [['--timeout', '0'], {}, '--timeout / DEPLOY_TIMEOUT: "0" is zero; give a duration such as 30s or 10m, or leave it out for no default per-command timeout'],
    [[], { DEPLOY_TIMEOUT: '0s' }, '--timeout / DEPLOY_TIMEOUT: "0s" is zero'],
    [['--deadline', '0m'], {}, '--deadline / DEPLOY_DEADLINE: "0m" is zero; give a duration such as 30s or 10m, or leave it out for no deadline for the run'],
    [['--deadline', 'soon'], {}, '--deadline / DEPLOY_DEADLINE: invalid duration "soon"'],
  ])('%j %j', async (args, env, message) => {
    const { code, stderr } = await run(args, env);
    expect(code).toBe(2);
    expect(stderr).toContain(`deploy: ${message}`);
    expect(existsSync(ran())).toBe(false);
  });
});
