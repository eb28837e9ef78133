import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task } from '../../src/config/define.ts';
import { CommandError } from '../../src/core/errors.ts';
import { sh } from '../../src/core/quote.ts';
import type { Result } from '../../src/core/result.ts';
import { PolicyPrompter } from '../../src/prompts/prompter.ts';
import { runDeployfile, sitesOn, startSshFixture, type SshFixture } from '../helpers/embedded-site.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

let fx: SshFixture;

beforeAll(async () => {
  fx = await startSshFixture(['alleged', 'bravo', 'charlie']);
});
afterAll(async () => {
  await fx?.close();
});

const one = () => ({ alleged: sitesOn(fx).alleged! });

describe('commands over SSH', () => {
  it('runs as the site user in its home and returns stdout, stderr and the exit code', async () => {
    let result: Result | undefined;
    const { outcome } = await runDeployfile(fx, { sites: one(), tasks: { t: async (c) => { result = await c.run('echo "$USER in $PWD"; echo oops >&2'); } } }, ['t']);
    expect(outcome.exitCode).toBe(0);
    expect(result?.stdout).toBe(`alleged in ${fx.homes.alleged}\n`);
    expect(result?.stderr).toBe('oops\n');
    expect(result?.exitCode).toBe(0);
    expect(result?.ok).toBe(true);
    expect(result?.target).toMatch(/^alleged@127\.0\.0\.1:\d+$/);
  });

  it('a failing command throws an error whose message names site, command, exit code and stderr tail', async () => {
    let caught: unknown;
    const { outcome, of } = await runDeployfile(
      fx,
      { sites: one(), tasks: { t: async (c) => { try { await c.cd('/tmp').run('echo fatal: not a git repository >&2; exit 3'); } catch (e) { caught = e; throw e; } } } },
      ['t'],
    );
    expect(caught).toBeInstanceOf(CommandError);
    const error = caught as CommandError;
    expect(error.message).toContain('Command failed with exit code 3 on alleged (alleged@127.0.0.1');
    expect(error.message).toContain('in /tmp: echo fatal: not a git repository >&2; exit 3');
    expect(error.message).toContain('  fatal: not a git repository');
    expect(error.exitCode).toBe(3);
    expect(error.cwd).toBe('/tmp');
    expect(outcome.exitCode).toBe(1);
    expect(of('site:end')[0]).toMatchObject({ site: 'alleged', status: 'failed', failedTask: 't', failedCommand: 'echo fatal: not a git repository >&2; exit 3' });
  });

  it('warn-only returns the failed result, per call or as a derived context', async () => {
    const seen: Result[] = [];
    const { outcome } = await runDeployfile(
      fx,
      { sites: one(), tasks: { t: async (c) => { seen.push(await c.run('exit 4', { warn: true })); seen.push(await c.warnOnly().run('exit 5')); } } },
      ['t'],
    );
    expect(outcome.exitCode).toBe(0);
    expect(seen.map((r) => [r.exitCode, r.failed])).toEqual([[4, true], [5, true]]);
  });

  it('reports a command killed by a signal as that signal', async () => {
    let result: Result | undefined;
    await runDeployfile(fx, { sites: one(), tasks: { t: async (c) => { result = await c.warnOnly().run('kill -TERM $$'); } } }, ['t']);
    expect(result?.signal).toBe('TERM');
    expect(result?.exitCode).toBeNull();
    expect(result?.failed).toBe(true);
  });

  it('a command past its timeout is ended and reported as timed out', async () => {
    let result: Result | undefined;
    const started = Date.now();
    await runDeployfile(fx, { sites: one(), tasks: { t: async (c) => { result = await c.warnOnly().run('sleep 30', { timeout: '300ms' }); } } }, ['t']);
    expect(result?.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('cd, prefix and env compose on the server like nested with-blocks', async () => {
    await writeFile(join(fx.homes.alleged!, 'activate'), 'export VENV=active\n');
    let out = '';
    await runDeployfile(
      fx,
      {
        sites: one(),
        tasks: {
          t: async (c) => {
            await c.run('mkdir -p "Sites/my site"');
            const app = c.cd('Sites').cd('my site').prefix(`. ${fx.homes.alleged}/activate`).env({ MODE: 'prod' });
            out = (await app.run('echo "$PWD|$VENV|$MODE"')).stdout.trim();
          },
        },
      },
      ['t'],
    );
    expect(out).toBe(`${fx.homes.alleged}/Sites/my site|active|prod`);
  });

  it('hostile interpolated values arrive on the server as literal arguments', async () => {
    const marker = join(fx.homes.alleged!, 'pwned');
    const hostile = [`$(touch ${marker})`, `\`touch ${marker}\``, `x; touch ${marker}`, "it's", 'a\nb', '*'];
    let out = '';
    await runDeployfile(fx, { sites: one(), tasks: { t: async (c) => { out = (await c.run`printf '[%s]' ${hostile}`).stdout; } } }, ['t']);
    expect(out).toBe(hostile.map((value) => `[${value}]`).join(''));
    expect(existsSync(marker)).toBe(false);
  });
});

describe('one connection per site', () => {
  it('reuses a single SSH connection for every command and transfer of a site', async () => {
    const before = fx.server.stats.connections;
    const local = await tempDir('deployfile-put-');
    await writeFile(join(local, 'a.txt'), 'payload');
    const { outcome } = await runDeployfile(
      fx,
      {
        sites: one(),
        tasks: {
          a: async (c) => { for (let i = 0; i < 10; i++) await c.run('true'); },
          b: async (c) => { await c.put(join(local, 'a.txt'), 'a.txt'); await c.run('cat a.txt'); },
          d: async (c) => { await c.invoke('a'); },
        },
      },
      ['a', 'b', 'd'],
    );
    expect(outcome.exitCode).toBe(0);
    expect(fx.server.stats.connections - before).toBe(1);
  });

  it('runs nothing (no lock, no history) on a site whose tasks fail before any remote command', async () => {
    const before = fx.server.stats.commands.length;
    const { outcome } = await runDeployfile(fx, { sites: sitesOn(fx), tasks: { t: async (c) => { c.abort('stop here'); } } }, ['t']);
    expect(outcome.exitCode).not.toBe(0);
    expect(fx.server.stats.commands.slice(before)).toEqual([]);
  });

  it('connects while the first task still works on this machine, and runs the site\'s commands over that connection', async () => {
    const before = fx.server.stats.connections;
    const commandsBefore = fx.server.stats.commands.length;
    let connectedEarly = false;
    const { outcome } = await runDeployfile(
      fx,
      {
        sites: one(),
        tasks: {
          t: async (c) => {
            // Local work (the tests, the push): the site's handshake is already under way.
            for (let i = 0; i < 100 && !connectedEarly; i++) {
              await c.local('true');
              connectedEarly = fx.server.stats.connections > before;
            }
            expect(fx.server.stats.commands.length).toBe(commandsBefore);
            await c.run('true');
          },
        },
      },
      ['t'],
    );
    expect(outcome.exitCode).toBe(0);
    expect(connectedEarly).toBe(true);
    expect(fx.server.stats.connections - before).toBe(1);
  });
});

describe('SFTP put and get', () => {
  it('round-trips a file byte for byte', async () => {
    const dir = await tempDir('deployfile-sftp-');
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    await writeFile(join(dir, 'blob.bin'), data);
    const { outcome } = await runDeployfile(
      fx,
      { sites: one(), tasks: { t: async (c) => { await c.put(join(dir, 'blob.bin'), 'blob.bin'); await c.get('blob.bin', join(dir, 'back', 'blob.bin')); } } },
      ['t'],
    );
    expect(outcome.exitCode).toBe(0);
    expect((await readFile(join(fx.homes.alleged!, 'blob.bin'))).equals(data)).toBe(true);
    expect((await readFile(join(dir, 'back', 'blob.bin'))).equals(data)).toBe(true);
  });
});

describe('questions without a TTY', () => {
  it('c.confirm is answered no by policy, and yes with --yes; each answer is an event', async () => {
    const answers: boolean[] = [];
    const config = { sites: one(), tasks: { t: async (c: any) => { answers.push(await c.confirm('Proceed?', { default: true })); } } };
    const no = await runDeployfile(fx, config, ['t']);
    const yes = await runDeployfile(fx, config, ['t'], { prompter: new PolicyPrompter({ yes: true, onFailure: 'abort' }) });
    expect(answers).toEqual([false, true]);
    expect(no.of('prompt')[0]).toMatchObject({ kind: 'confirm', question: 'Proceed?', answer: 'no', by: 'policy' });
    expect(yes.of('prompt')[0]).toMatchObject({ answer: 'yes', by: 'policy' });
  });

  it('--on-failure continue skips the failed command and the task goes on', async () => {
    const ran: string[] = [];
    const { outcome, of } = await runDeployfile(
      fx,
      { sites: one(), tasks: { t: async (c) => { await c.run('exit 7'); ran.push((await c.run('echo after')).stdout.trim()); } } },
      ['t'],
      { prompter: new PolicyPrompter({ yes: false, onFailure: 'continue' }) },
    );
    expect(ran).toEqual(['after']);
    expect(outcome.exitCode).toBe(0);
    expect(of('prompt')[0]).toMatchObject({ kind: 'failure', answer: 'skip', by: 'policy' });
  });

  it('abort (the default) stops the site at the failed command', async () => {
    const ran: string[] = [];
    const { outcome } = await runDeployfile(fx, { sites: one(), tasks: { t: async (c) => { await c.run('exit 7'); ran.push('after'); } } }, ['t']);
    expect(ran).toEqual([]);
    expect(outcome.exitCode).toBe(1);
  });

  it('a retry answer runs the command again', async () => {
    let calls = 0;
    const prompter = { confirm: async () => ({ answer: true, by: 'user' as const }), onFailure: async () => ({ answer: (++calls < 2 ? 'retry' : 'abort') as 'retry' | 'abort', by: 'user' as const }) };
    const { of } = await runDeployfile(fx, { sites: one(), tasks: { t: async (c) => { await c.run('echo x >> tries; exit 1'); } } }, ['t'], { prompter });
    expect(of('command:start')).toHaveLength(2);
    expect((await readFile(join(fx.homes.alleged!, 'tries'), 'utf8')).trim().split('\n')).toHaveLength(2);
  });
});

describe('tasks across sites', () => {
  it('a run-once task runs once for the whole run and every site waits for it', async () => {
    const dir = await tempDir('deployfile-once-');
    const counter = join(dir, 'count');
    const { outcome, of } = await runDeployfile(
      fx,
      {
        sites: sitesOn(fx),
        tasks: {
          test: task({ description: 'tests', once: true, run: async (c) => { await c.local(sh`echo ran >> ${counter}`); } }),
          deploy: async (c) => { await c.invoke('test'); await c.run('echo deployed'); },
        },
      },
      ['test', 'deploy'],
      { parallel: 3 },
    );
    expect(outcome.exitCode).toBe(0);
    expect((await readFile(counter, 'utf8')).trim().split('\n')).toEqual(['ran']);
    expect(of('task:start').filter((e) => e.task === 'test')).toHaveLength(1);
    expect(outcome.summary.map((s) => s.status)).toEqual(['ok', 'ok', 'ok']);
  });

  it('when the run-once task aborts, no site runs anything remote', async () => {
    const before = fx.server.stats.commands.length;
    const { outcome } = await runDeployfile(
      fx,
      {
        sites: sitesOn(fx),
        tasks: {
          test: task({ once: true, run: async (c) => { const r = await c.local('exit 1', { warn: true }); if (r.failed && !(await c.confirm('Tests failed. Continue anyway?'))) c.abort('tests failed'); } }),
          deploy: async (c) => { await c.invoke('test'); await c.run('echo deployed'); },
        },
      },
      ['deploy'],
    );
    expect(outcome.exitCode).toBe(1);
    expect(outcome.summary.map((s) => [s.status, s.failedTask])).toEqual([['aborted', 'test'], ['aborted', 'test'], ['aborted', 'test']]);
    expect(fx.server.stats.commands.length).toBe(before);
  });

  it('a failure inside an invoked task is told in full once; the tasks around it point there', async () => {
    const { of, outcome } = await runDeployfile(
      fx,
      { sites: one(), tasks: { pull: async (c) => { await c.run('echo fatal: diverged >&2; exit 1'); }, deploy: async (c) => { await c.invoke('pull'); } } },
      ['deploy'],
    );
    const ends = of('task:end').map((e) => [e.task, e.status, e.error?.split('\n')]);
    expect(ends).toEqual([
      ['pull', 'failed', [expect.stringContaining('Command failed with exit code 1'), '  fatal: diverged']],
      ['deploy', 'failed', ['failed in pull']],
    ]);
    expect(outcome.summary[0]).toMatchObject({ failedTask: 'pull', failedCommand: 'echo fatal: diverged >&2; exit 1' });
  });

  it('one site failing leaves the others untouched', async () => {
    const { outcome } = await runDeployfile(
      fx,
      { sites: sitesOn(fx), tasks: { t: async (c) => { await c.run(c.site.name === 'bravo' ? 'exit 2' : 'echo fine'); } } },
      ['t'],
      { parallel: 3 },
    );
    expect(outcome.summary.map((s) => [s.site, s.status])).toEqual([['alleged', 'ok'], ['bravo', 'failed'], ['charlie', 'ok']]);
    expect(outcome.exitCode).toBe(1);
  });
});
