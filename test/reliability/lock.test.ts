// The deploy lock and history scripts, run by a real /bin/sh against a temp
// HOME (LocalTransport), and the executor around them over the embedded SSH
// server. Real OpenSSH: lock.e2e.test.ts.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { task } from '../../src/config/define.ts';
import { InterruptedError } from '../../src/core/errors.ts';
import { parseHistory, readHistory, revisionFrom } from '../../src/connection/history.ts';
import { acquireLock, describeHolder, lockInfoFor, parseLockInfo, readLock, releaseLock, removeLock, SiteLockedError } from '../../src/connection/lock.ts';
import { recordAndRelease } from '../../src/connection/finish.ts';
import { SiteConnection } from '../../src/connection/site-connection.ts';
import { runNeedsLock } from '../../src/executor/guard.ts';
import { LocalTransport } from '../../src/transports/local.ts';
import { renderSummary } from '../../src/views/summary.ts';
import { style } from '../../src/views/style.ts';
import { runDeployfile, sitesOn, startSshFixture, type SshFixture } from '../helpers/embedded-site.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

async function tempHome(): Promise<{ home: string; transport: LocalTransport }> {
  const home = await tempDir('deployfile-lock-');
  return { home, transport: new LocalTransport({ cwd: home, env: { PATH: process.env.PATH, HOME: home } }) };
}

describe('the lock on the server', () => {
  it('is taken by one run at a time; the second learns who holds it', async () => {
    const { home, transport } = await tempHome();
    const first = lockInfoFor('run-1', ['deploy']);
    const second = lockInfoFor('run-2', ['deploy']);
    expect(await acquireLock(transport, first)).toEqual({ acquired: true });
    const refused = await acquireLock(transport, second);
    expect(refused.acquired).toBe(false);
    expect(!refused.acquired && refused.holder).toMatchObject({ runId: 'run-1', operator: first.operator, pid: process.pid, tasks: ['deploy'] });
    expect(JSON.parse(await readFile(join(home, '.deployfile/lock/info.json'), 'utf8'))).toMatchObject({ runId: 'run-1' });
  });

  it('keeps what it records byte for byte: backslashes, quotes and spaces in the holder survive the shell', async () => {
    const { home, transport } = await tempHome();
    const info = { ...lockInfoFor('run-1', ['deploy']), operator: '  ci \\ "nightly" ', deployfile: 'C:\\sites\\deployfile.ts' };
    expect(await acquireLock(transport, info)).toEqual({ acquired: true });
    expect(JSON.parse(await readFile(join(home, '.deployfile/lock/info.json'), 'utf8'))).toEqual(info);
    const refused = await acquireLock(transport, lockInfoFor('run-2', ['deploy']));
    expect(!refused.acquired && refused.holder).toEqual(info);
    expect(await releaseLock(transport, 'run-1')).toBe(true);
  });

  it('of many runs racing for it, exactly one gets it', async () => {
    const { transport } = await tempHome();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => acquireLock(transport, lockInfoFor(`run-${i}`, ['deploy']))));
    expect(results.filter((r) => r.acquired)).toHaveLength(1);
  });

  it('is released only by the run that holds it', async () => {
    const { home, transport } = await tempHome();
    await acquireLock(transport, lockInfoFor('run-1', ['deploy']));
    expect(await releaseLock(transport, 'run-2')).toBe(false);
    expect(existsSync(join(home, '.deployfile/lock'))).toBe(true);
    expect(await releaseLock(transport, 'run-1')).toBe(true);
    expect(existsSync(join(home, '.deployfile/lock'))).toBe(false);
    expect(await releaseLock(transport, 'run-1')).toBe(false);
  });

  it('unlock reads the holder, then removes it (also one without readable info)', async () => {
    const { home, transport } = await tempHome();
    expect(await readLock(transport)).toEqual({ locked: false });
    await acquireLock(transport, lockInfoFor('run-1', ['deploy', 'migrate']));
    const seen = await readLock(transport);
    expect(seen).toMatchObject({ locked: true, holder: { runId: 'run-1', tasks: ['deploy', 'migrate'] } });
    expect(await removeLock(transport, 'run-1')).toBe(true);
    await new LocalTransport({ env: { PATH: process.env.PATH } }).exec(`mkdir -p ${home}/.deployfile/lock`, {});
    expect(await readLock(transport)).toMatchObject({ locked: true, holder: null });
    expect(await removeLock(transport)).toBe(true);
    expect(await readLock(transport)).toEqual({ locked: false });
  });

  it('names the holder: who, process, since when, which tasks', () => {
    const info = { ...lockInfoFor('r', ['deploy', 'migrate']), operator: 'alice@laptop', host: 'elsewhere', pid: 4242, since: '2025-05-01T10:00:00.000Z' };
    expect(describeHolder(info)).toBe('alice@laptop (pid 4242) since 2025-05-01T10:00:00.000Z, running deploy, migrate');
    const error = new SiteLockedError('alleged', info);
    expect(error.message).toContain('site alleged is locked by alice@laptop (pid 4242)');
    expect(error.message).toContain('deploy unlock alleged');
  });

  it('says when the holder was a process on this machine that is gone', () => {
    const info = { ...lockInfoFor('r', ['deploy']), pid: 2 ** 22 + 12345 };
    expect(describeHolder(info)).toContain(`(process ${info.pid} no longer runs on`);
  });

  it('reads the holder past a login banner', () => {
    expect(parseLockInfo(`Welcome!\n{"operator":"bob@ci","pid":1,"since":"x","tasks":["a"],"runId":"q"}\n`)).toMatchObject({ operator: 'bob@ci', runId: 'q' });
    expect(parseLockInfo('garbage')).toBeNull();
  });

  it('DEPLOY_OPERATOR names pipelines', async () => {
    const { operatorName } = await import('../../src/connection/lock.ts');
    expect(operatorName({ DEPLOY_OPERATOR: 'github-actions run 42' })).toBe('github-actions run 42');
    expect(operatorName({})).toMatch(/.+@.+/);
  });

  it('is needed when any per-site task needs it; run-once tasks and lock: false ones need none', () => {
    const run = async () => {};
    expect(runNeedsLock([{ run }])).toBe(true);
    expect(runNeedsLock([{ run, lock: false }])).toBe(false);
    expect(runNeedsLock([{ run, once: true }, { run, lock: false }])).toBe(false);
    expect(runNeedsLock([{ run, lock: false }, { run }])).toBe(true);
  });

  it('is taken with the first connection, and a refusal sticks', async () => {
    const { transport } = await tempHome();
    await acquireLock(transport, lockInfoFor('other', ['deploy']));
    const locking = new SiteConnection({ site: 'alleged', open: () => transport, lock: lockInfoFor('mine', ['deploy']) });
    expect(locking.held).toBe(false);
    await expect(locking.exec('true', {})).rejects.toBeInstanceOf(SiteLockedError);
    await expect(locking.exec('true', {})).rejects.toThrow(/locked by/);
    expect(locking.held).toBe(false);
  });

  it('taking it is ended by Ctrl-C, as an interruption, without waiting for the script', async () => {
    const { home, transport } = await tempHome();
    // A lock without info.json: the script waits (2 s) for the holder to write it.
    await mkdir(join(home, '.deployfile', 'lock'), { recursive: true });
    const interrupt = new AbortController();
    const connection = new SiteConnection({ site: 'alleged', open: () => transport, signal: interrupt.signal, lock: lockInfoFor('mine', ['deploy']) });
    setTimeout(() => interrupt.abort(), 100);
    const started = Date.now();
    await expect(connection.exec('true', {})).rejects.toBeInstanceOf(InterruptedError);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(connection.held).toBe(false);
  });
});

describe('the history on the server', () => {
  it('appends one JSON line per run and reads them newest first', async () => {
    const { home, transport } = await tempHome();
    expect(await readHistory(transport, 10)).toEqual([]);
    for (const [i, outcome] of (['ok', 'failed', 'interrupted'] as const).entries()) {
      await recordAndRelease(transport, { time: `2025-05-0${i + 1}T10:00:00.000Z`, operator: 'alice@laptop', tasks: ['deploy'], outcome, durationMs: 1000 * i, runId: `r${i}`, error: i === 1 ? 'boom\nsecond line' : undefined }, `r${i}`, {});
    }
    const lines = (await readFile(join(home, '.deployfile/history.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(parseHistory(lines.join('\n'))[1]).toMatchObject({ outcome: 'failed', error: 'boom' });
    expect((await readHistory(transport, 10)).map((r) => r.runId)).toEqual(['r2', 'r1', 'r0']);
    expect((await readHistory(transport, 2)).map((r) => r.runId)).toEqual(['r2', 'r1']);
  });

  it('takes the revision a site got (deployfile.revision:<site>, set by pull), else the run-wide deployfile.revision', () => {
    expect(revisionFrom(new Map([['deployfile.revision', 'abc123']]))).toBe('abc123');
    // Sites of one run can come from different working copies: the site's own revision wins.
    const shared = new Map([['deployfile.revision', 'def'], ['deployfile.revision:alleged', 'abc']]);
    expect(revisionFrom(shared, 'alleged')).toBe('abc');
    expect(revisionFrom(shared, 'bravo')).toBe('def');
    expect(revisionFrom(new Map())).toBeUndefined();
  });
});

describe('the end of a site: record, then release, in one script', () => {
  const record = { time: '2025-05-01T10:00:00.000Z', operator: 'alice@laptop', tasks: ['deploy'], outcome: 'ok' as const, durationMs: 1200, runId: 'run-1' };

  it('appends the record and removes the lock, over one command', async () => {
    const { home, transport } = await tempHome();
    await acquireLock(transport, lockInfoFor('run-1', ['deploy']));
    let commands = 0;
    const counting = Object.assign(Object.create(transport) as LocalTransport, { exec: (...args: Parameters<LocalTransport['exec']>) => (commands++, transport.exec(...args)) });
    expect(await recordAndRelease(counting, record, 'run-1', {})).toEqual({ historyError: undefined, released: true });
    expect(commands).toBe(1);
    expect(existsSync(join(home, '.deployfile/lock'))).toBe(false);
    expect(parseHistory(await readFile(join(home, '.deployfile/history.jsonl'), 'utf8'))).toEqual([record]);
  });

  it('records an error with quotes, backslashes and leading spaces as it was', async () => {
    const { home, transport } = await tempHome();
    await acquireLock(transport, lockInfoFor('run-1', ['deploy']));
    const failed = { ...record, outcome: 'failed' as const, error: `  it's "C:\\x" \\n %s $HOME` };
    expect(await recordAndRelease(transport, failed, 'run-1', {})).toEqual({ historyError: undefined, released: true });
    expect(parseHistory(await readFile(join(home, '.deployfile/history.jsonl'), 'utf8'))).toEqual([failed]);
  });

  it('releases the lock even when the history cannot be written, and says why', async () => {
    const { home, transport } = await tempHome();
    await acquireLock(transport, lockInfoFor('run-1', ['deploy']));
    await mkdir(join(home, '.deployfile/history.jsonl'), { recursive: true });
    const finished = await recordAndRelease(transport, record, 'run-1', {});
    expect(finished.released).toBe(true);
    expect(finished.historyError).toMatch(/could not append to ~\/\.deployfile\/history\.jsonl on .*: .*Is a directory/);
    expect(existsSync(join(home, '.deployfile/lock'))).toBe(false);
  });

  it("records, but leaves alone a lock another run took since", async () => {
    const { home, transport } = await tempHome();
    await acquireLock(transport, lockInfoFor('run-2', ['deploy']));
    expect(await recordAndRelease(transport, record, 'run-1', {})).toEqual({ historyError: undefined, released: false });
    expect(existsSync(join(home, '.deployfile/lock'))).toBe(true);
    expect(await readHistory(transport, 5)).toHaveLength(1);
  });
});

describe('the summary of a site that stopped part-way', () => {
  it('says what was done and what never started', () => {
    const text = renderSummary(
      [{ site: 'alleged', target: 'alleged@web1:22', status: 'interrupted', durationMs: 1200, failedTask: 'migrate', failedCommand: 'sleep 30', tasksDone: ['pull'], tasksNotRun: ['restart', 'check'] }],
      style(false),
    );
    expect(text).toContain('interrupted at migrate: sleep 30');
    expect(text).toContain('done: pull; never started: restart, check');
  });
});

describe('runs with the lock, over SSH', () => {
  let fx: SshFixture;
  beforeAll(async () => {
    fx = await startSshFixture(['alleged', 'bravo']);
  });
  afterAll(async () => {
    await fx?.close();
  });
  const one = () => ({ alleged: sitesOn(fx).alleged! });
  const lockDir = () => join(fx.homes.alleged!, '.deployfile/lock');
  const history = async () => parseHistory(await readFile(join(fx.homes.alleged!, '.deployfile/history.jsonl'), 'utf8').catch(() => ''));

  it('two runs of one site at once: one proceeds, the other fails naming the holder; no lock is left', async () => {
    const slow = { sites: one(), tasks: { deploy: async (c: any) => { await c.run('sleep 1'); } } };
    const [a, b] = await Promise.all([runDeployfile(fx, slow, ['deploy']), runDeployfile(fx, slow, ['deploy'])]);
    const outcomes = [a.outcome.summary[0]!, b.outcome.summary[0]!];
    expect(outcomes.map((s) => s.status).sort()).toEqual(['failed', 'ok']);
    const loser = outcomes.find((s) => s.status === 'failed')!;
    expect(loser.error).toMatch(/^site alleged is locked by .+@.+ \(pid \d+\) since .+, running deploy/);
    expect(existsSync(lockDir())).toBe(false);
  });

  it('is released after a failure, and the history says how it went', async () => {
    const before = (await history()).length;
    const { outcome } = await runDeployfile(
      fx,
      { sites: one(), tasks: { push: task({ once: true, run: async (c) => { c.shared.set('deployfile.revision', 'f00dfeed'); } }), deploy: async (c) => { await c.run('exit 3'); } } },
      ['push', 'deploy'],
    );
    expect(outcome.exitCode).toBe(1);
    expect(existsSync(lockDir())).toBe(false);
    const records = await history();
    expect(records).toHaveLength(before + 1);
    expect(records.at(-1)).toMatchObject({ outcome: 'failed', failedTask: 'deploy', revision: 'f00dfeed', tasks: ['push', 'deploy'] });
  });

  it('is released on Ctrl-C; the site says what ran, what was interrupted and what never started', async () => {
    const interrupt = new AbortController();
    const { outcome, of } = await runDeployfile(
      fx,
      {
        sites: one(),
        tasks: {
          pull: async (c) => { await c.run('true'); },
          migrate: async (c) => { setTimeout(() => interrupt.abort(), 300); await c.run('sleep 20'); },
          restart: async (c) => { await c.run('true'); },
        },
      },
      ['pull', 'migrate', 'restart'],
      { signal: interrupt.signal },
    );
    expect(outcome.exitCode).toBe(130);
    expect(of('site:end')[0]).toMatchObject({ status: 'interrupted', failedTask: 'migrate', failedCommand: 'sleep 20', tasksDone: ['pull'], tasksNotRun: ['restart'] });
    expect(outcome.durationMs).toBeLessThan(10_000);
    expect(existsSync(lockDir())).toBe(false);
    expect((await history()).at(-1)).toMatchObject({ outcome: 'interrupted', failedTask: 'migrate' });
  });

  it('read-only tasks (lock: false) need none and run beside a held lock', async () => {
    const { transport } = { transport: fx.transportFor({ name: 'alleged', user: 'alleged', host: fx.server.host, port: fx.server.port } as never) };
    await acquireLock(transport, lockInfoFor('someone-else', ['deploy']));
    try {
      const { outcome } = await runDeployfile(fx, { sites: one(), tasks: { status: task({ lock: false, run: async (c) => { await c.run('true'); } }) } }, ['status']);
      expect(outcome.exitCode).toBe(0);
      const { outcome: refused } = await runDeployfile(fx, { sites: one(), tasks: { deploy: async (c) => { await c.run('true'); } } }, ['deploy']);
      expect(refused.summary[0]).toMatchObject({ status: 'failed', failedTask: 'deploy', tasksNotRun: [] });
      expect(refused.summary[0]!.error).toContain('deploy unlock alleged');
    } finally {
      await releaseLock(transport, 'someone-else');
      await transport.close();
    }
  });

  it('a run of lock: false tasks only (deploy provision through an admin account) writes no history', async () => {
    const before = (await history()).length;
    const { outcome } = await runDeployfile(fx, { sites: one(), tasks: { provision: task({ lock: false, run: async (c) => { await c.run('true'); } }) } }, ['provision']);
    expect(outcome.exitCode).toBe(0);
    expect((await history()).length).toBe(before);
    expect(existsSync(lockDir())).toBe(false);
  });

  it('a dry run takes no lock and writes no history', async () => {
    const before = (await history()).length;
    const { DryRunTransport } = await import('../../src/transports/dry-run.ts');
    const { outcome } = await runDeployfile(fx, { sites: one(), tasks: { deploy: async (c) => { await c.run('true'); } } }, ['deploy'], { dryRun: true, transportFor: (site) => new DryRunTransport(site.name) });
    expect(outcome.exitCode).toBe(0);
    expect((await history()).length).toBe(before);
  });
});
