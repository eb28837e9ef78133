import { describe, expect, it } from 'vitest';
import type { DeployfileConfig } from '../../src/config/define.ts';
import { validateDeployfile } from '../../src/config/validate.ts';
import { DeployEvent } from '../../src/core/event-schema.ts';
import { EventBus } from '../../src/core/events.ts';
import { execute, type ExecuteOptions } from '../../src/executor/executor.ts';
import { HandshakeLimiter } from '../../src/executor/handshakes.ts';
import { InteractivePrompter, type Asker } from '../../src/prompts/interactive.ts';
import { PolicyPrompter } from '../../src/prompts/prompter.ts';
import { FakeFleet, FakeTransport, type FakeTransportOptions } from '../helpers/fake-transport.ts';

/**
 * These tests are about scheduling, so they leave the per-site deploy lock
 * (issue 6) out: it would add its own commands to every fake site. Spread
 * from a variable so this compiles whether or not ExecuteOptions has `locks` yet.
 */
const NO_LOCKS = { locks: false };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const siteNames = (n: number) => Array.from({ length: n }, (_, i) => `site${String(i + 1).padStart(2, '0')}`);

/** A deployfile of `n` sites on one server (each its own user), and the given tasks. */
function fleetDeployfile(n: number, tasks: DeployfileConfig['tasks'], groups?: Record<string, string[]>) {
  return validateDeployfile({ sites: Object.fromEntries(siteNames(n).map((name) => [name, { host: 'web1.example.com' }])), groups, tasks }, '/work/deployfile.ts');
}

/** The usual two-step deploy: build once locally, then pull and migrate on every site. */
const deployTasks: DeployfileConfig['tasks'] = {
  build: { once: true, run: async (c) => void (await c.local('make build')) },
  deploy: async (c) => {
    await c.invoke('build');
    await c.run('git pull --ff-only');
    await c.run(`migrate ${c.site.name}`);
  },
};

async function run({ n, taskDefs, perSite, ...options }: Partial<ExecuteOptions> & { n: number; taskDefs?: DeployfileConfig['tasks']; perSite?: (name: string) => Omit<FakeTransportOptions, 'onHandshake' | 'site'> }) {
  const deployfile = fleetDeployfile(n, taskDefs ?? deployTasks);
  const fleet = new FakeFleet((site) => perSite?.(site.name) ?? {});
  const local = new FakeTransport('local');
  const bus = new EventBus('run-test');
  const events: DeployEvent[] = [];
  bus.on((event) => events.push(event));
  const outcome = await execute({
    ...NO_LOCKS,
    deployfile,
    tasks: ['deploy'],
    sites: deployfile.sites,
    bus,
    prompter: new PolicyPrompter({ yes: false, onFailure: 'abort' }),
    transportFor: fleet.transportFor,
    local,
    handshakes: new HandshakeLimiter(8),
    ...options,
  });
  return { outcome, fleet, local, events };
}

describe('many sites at once', () => {
  it('20 sites at once: the run-once task runs once, before any site goes on, and every site ends ok', async () => {
    const { outcome, fleet, local, events } = await run({ n: 20, parallel: 20, perSite: () => ({ connectDelayMs: 5, script: () => ({ delayMs: 50 }) }) });
    expect(outcome.exitCode).toBe(0);
    expect(outcome.summary.map((row) => row.status)).toEqual(Array(20).fill('ok'));
    expect(local.commands).toEqual(['make build']);
    const buildEnd = events.findIndex((e) => e.type === 'task:end' && e.task === 'build');
    const firstPull = events.findIndex((e) => e.type === 'command:start' && e.command === 'git pull --ff-only');
    expect(buildEnd).toBeGreaterThan(-1);
    expect(firstPull).toBeGreaterThan(buildEnd);
    for (const name of siteNames(20)) expect(fleet.commandsOf(name).filter((c) => /pull|migrate/.test(c))).toEqual(['git pull --ff-only', `migrate ${name}`]);
    // Sites really overlapped.
    expect(fleet.peakOpen).toBeGreaterThan(8);
  });

  it('one site failing: the others succeed, and the summary names that site, its task and its command', async () => {
    const { outcome, events } = await run({
      n: 20,
      parallel: 20,
      perSite: (name) => ({ script: (cmd) => (name === 'site07' && cmd.startsWith('migrate') ? { exitCode: 3, stderr: 'relation does not exist\n' } : { delayMs: 2 }) }),
    });
    expect(outcome.exitCode).toBe(1);
    expect(outcome.status).toBe('failed');
    const failed = outcome.summary.filter((row) => row.status !== 'ok');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ site: 'site07', status: 'failed', failedTask: 'deploy', failedCommand: 'migrate site07' });
    expect(failed[0]?.error).toContain('exit code 3');
    const runEnd = events.at(-1);
    expect(runEnd?.type).toBe('run:end');
    expect(runEnd?.type === 'run:end' && runEnd.summary).toEqual(outcome.summary);
    // Nothing of site07 leaks into another site's events.
    const commandSite = new Map(events.flatMap((e) => (e.type === 'command:start' ? [[e.commandId, e.site] as const] : [])));
    for (const e of events) if (e.type === 'output' && e.chunk.includes('relation')) expect(commandSite.get(e.commandId)).toBe('site07');
  });

  it('--max-failures 2: after two failed sites no new site starts; the rest are "not started"', async () => {
    const { outcome, events } = await run({
      n: 10,
      parallel: 1,
      maxFailures: 2,
      perSite: (name) => ({ script: (cmd) => (['site02', 'site04', 'site06'].includes(name) && cmd.startsWith('migrate') ? { exitCode: 1 } : undefined) }),
    });
    expect(outcome.summary.map((row) => row.status)).toEqual(['ok', 'failed', 'ok', 'failed', ...Array(6).fill('not-started')]);
    expect(outcome.exitCode).toBe(1);
    const notStartedEnds = events.filter((e) => e.type === 'site:end' && e.status === 'not-started');
    expect(notStartedEnds).toHaveLength(6);
    expect(events.filter((e) => e.type === 'site:start')).toHaveLength(4);
  });

  it('--batch 4: batches run one after the other; a failed batch stops the rollout', async () => {
    const started: string[] = [];
    const { outcome, events } = await run({
      n: 12,
      batch: 4,
      parallel: 4,
      perSite: (name) => ({ script: (cmd) => (started.push(name), name === 'site06' && cmd.startsWith('migrate') ? { exitCode: 1, delayMs: 1 } : { delayMs: 2 }) }),
    });
    expect(outcome.summary.map((row) => row.status)).toEqual([...Array(4).fill('ok'), 'ok', 'failed', 'ok', 'ok', ...Array(4).fill('not-started')]);
    const order = events.flatMap((e) => (e.type === 'site:start' || (e.type === 'site:end' && e.status !== 'not-started') ? [`${e.type} ${e.site}`] : []));
    const lastEndOfBatch1 = Math.max(...siteNames(4).map((n) => order.indexOf(`site:end ${n}`)));
    const firstStartOfBatch2 = Math.min(...siteNames(8).slice(4).map((n) => order.indexOf(`site:start ${n}`)));
    expect(firstStartOfBatch2).toBeGreaterThan(lastEndOfBatch1);
  });

  it('50 sites at once: never more than 8 handshakes under way, while all 50 connections stay open', async () => {
    const tasks: DeployfileConfig['tasks'] = { deploy: async (c) => void (await c.run('deploy-step', { timeout: '10s' })) };
    const { outcome, fleet } = await run({ n: 50, parallel: 50, taskDefs: tasks, perSite: () => ({ connectDelayMs: 10, script: () => ({ delayMs: 400 }) }) });
    expect(outcome.summary.every((row) => row.status === 'ok')).toBe(true);
    expect(fleet.peakHandshaking).toBe(8);
    expect(fleet.peakOpen).toBeGreaterThan(40);
    expect([...fleet.transports.values()].every((t) => t.handshakes === 1)).toBe(true);
  });

  it('without the limiter the same run would open all 50 handshakes at once (what sshd MaxStartups punishes)', async () => {
    const tasks: DeployfileConfig['tasks'] = { deploy: async (c) => void (await c.run('deploy-step')) };
    const { fleet } = await run({ n: 50, parallel: 50, taskDefs: tasks, handshakes: new HandshakeLimiter(1000), perSite: () => ({ connectDelayMs: 10 }) });
    expect(fleet.peakHandshaking).toBe(50);
  });

  it('a site whose connection is refused fails alone, "at" the task that first needed it', async () => {
    const { ConnectionError } = await import('../../src/core/errors.ts');
    const { outcome } = await run({
      n: 3,
      parallel: 3,
      perSite: (name) => (name === 'site02' ? { connectError: new ConnectionError('authentication to site02@web1.example.com:22 failed', name, false) } : {}),
    });
    expect(outcome.summary.map((r) => r.status)).toEqual(['ok', 'failed', 'ok']);
    expect(outcome.summary[1]).toMatchObject({ failedTask: 'deploy' });
    expect(outcome.summary[1]?.error).toContain('authentication to site02');
  });

  it('a failed run-once task fails every site at that task, and nothing runs remotely', async () => {
    const tasks: DeployfileConfig['tasks'] = {
      build: { once: true, run: async (c) => void (await c.local('make build')) },
      deploy: async (c) => {
        await c.invoke('build');
        await c.run('git pull');
      },
    };
    const deployfile = fleetDeployfile(4, tasks);
    const fleet = new FakeFleet();
    const bus = new EventBus('r');
    const outcome = await execute({
      ...NO_LOCKS,
      deployfile,
      tasks: ['deploy'],
      sites: deployfile.sites,
      bus,
      prompter: new PolicyPrompter({ yes: false, onFailure: 'abort' }),
      transportFor: fleet.transportFor,
      local: new FakeTransport('local', { script: () => ({ exitCode: 2 }) }),
      parallel: 2,
    });
    expect(outcome.exitCode).toBe(1);
    expect(outcome.summary.map((r) => [r.status, r.failedTask])).toEqual(Array(4).fill(['failed', 'build']));
    for (const name of siteNames(4)) expect(fleet.commandsOf(name).filter((c) => c === 'git pull')).toEqual([]);
  });
});

describe('prompts while sites run at once', () => {
  /** An Asker that takes `ms` to answer, records what it was asked, and how many questions were open at once. */
  function recordingAsker(answer: (site: string | null, message: string) => string | boolean, ms = 20) {
    const asked: { site: string | null; message: string }[] = [];
    let open = 0;
    let peak = 0;
    const ask = async <T>(site: string | null, message: string): Promise<T> => {
      open++;
      peak = Math.max(peak, open);
      asked.push({ site, message });
      await sleep(ms);
      open--;
      return answer(site, message) as T;
    };
    const asker: Asker = {
      select: (site, message) => ask(site, message),
      confirm: (site, message) => ask(site, message),
      secret: (site, message) => ask(site, message),
    };
    return { asker, asked, peak: () => peak };
  }

  it('asks one question at a time, each naming its site, while sites without a question keep running', async () => {
    const tasks: DeployfileConfig['tasks'] = {
      deploy: async (c) => {
        if (c.site.vars.ask) {
          if (await c.confirm(`Migrate ${c.site.name}?`)) await c.run('migrate');
        } else {
          for (let i = 0; i < 5; i++) await c.run(`step ${i}`);
        }
      },
    };
    const names = siteNames(6);
    const deployfile = validateDeployfile(
      { sites: Object.fromEntries(names.map((name, i) => [name, { host: 'h', vars: { ask: i < 4 } }])), tasks },
      '/work/deployfile.ts',
    );
    const finished: string[] = [];
    const fleet = new FakeFleet(() => ({ script: () => ({ delayMs: 5 }) }));
    const { asker, asked, peak } = recordingAsker(() => true, 60);
    const bus = new EventBus('r');
    bus.on((e) => {
      if (e.type === 'site:end') finished.push(e.site);
      if (e.type === 'prompt') finished.push(`answered ${e.site}`);
    });
    const outcome = await execute({ ...NO_LOCKS, deployfile, tasks: ['deploy'], sites: deployfile.sites, bus, prompter: new InteractivePrompter(asker), transportFor: fleet.transportFor, local: new FakeTransport('local'), parallel: 6 });
    expect(outcome.exitCode).toBe(0);
    expect(peak()).toBe(1);
    expect(asked.map((q) => q.site).sort()).toEqual(names.slice(0, 4));
    for (const q of asked) expect(q.message).toBe(`Migrate ${q.site}?`);
    // The two sites that never ask finish while the questions are still being answered.
    const lastAnswer = Math.max(...finished.map((entry, i) => (entry.startsWith('answered') ? i : -1)));
    expect(finished.indexOf('site05')).toBeLessThan(lastAnswer);
    expect(finished.indexOf('site06')).toBeLessThan(lastAnswer);
  });

  it('"skip failures on all sites" answers the questions queued behind it too', async () => {
    const tasks: DeployfileConfig['tasks'] = {
      deploy: async (c) => {
        await c.run('flaky');
        await c.run('after');
      },
    };
    const deployfile = fleetDeployfile(5, tasks);
    const fleet = new FakeFleet(() => ({ script: (cmd) => (cmd === 'flaky' ? { exitCode: 1 } : undefined) }));
    const { asker, asked } = recordingAsker(() => 'skip-all');
    const events: DeployEvent[] = [];
    const bus = new EventBus('r');
    bus.on((e) => events.push(e));
    const outcome = await execute({ ...NO_LOCKS, deployfile, tasks: ['deploy'], sites: deployfile.sites, bus, prompter: new InteractivePrompter(asker), transportFor: fleet.transportFor, local: new FakeTransport('local'), parallel: 5 });
    expect(asked).toHaveLength(1);
    expect(asked[0]?.message).toMatch(/^Command failed with exit code 1 on site0\d/);
    expect(outcome.summary.every((r) => r.status === 'ok')).toBe(true);
    for (const name of siteNames(5)) expect(fleet.commandsOf(name)).toContain('after');
    expect(events.filter((e) => e.type === 'prompt').map((e) => e.type === 'prompt' && e.answer)).toEqual(Array(5).fill('skip'));
  });

  it('with no TTY (policy), confirm questions never wait and are reported as answered by policy', async () => {
    const tasks: DeployfileConfig['tasks'] = { deploy: async (c) => void (await c.confirm('Really?')) };
    const deployfile = fleetDeployfile(3, tasks);
    const events: DeployEvent[] = [];
    const bus = new EventBus('r');
    bus.on((e) => events.push(e));
    await execute({ ...NO_LOCKS, deployfile, tasks: ['deploy'], sites: deployfile.sites, bus, prompter: new PolicyPrompter({ yes: true, onFailure: 'abort' }), transportFor: new FakeFleet().transportFor, local: new FakeTransport('local'), parallel: 3 });
    const prompts = events.filter((e) => e.type === 'prompt');
    expect(prompts).toHaveLength(3);
    for (const p of prompts) expect(p).toMatchObject({ kind: 'confirm', answer: 'yes', by: 'policy' });
  });
});

describe('the event stream of a fleet run', () => {
  it('every event matches the documented schema', async () => {
    const { events } = await run({ n: 5, parallel: 5, perSite: (name) => ({ script: (cmd) => (name === 'site03' && cmd.startsWith('migrate') ? { exitCode: 1, stderr: 'no\n' } : { stdout: 'ok\n' }) }) });
    for (const event of events) expect(DeployEvent.safeParse(event).success, JSON.stringify(event)).toBe(true);
    expect(new Set(events.map((e) => e.type))).toEqual(new Set(['run:start', 'site:start', 'task:start', 'task:end', 'command:start', 'output', 'command:end', 'prompt', 'site:end', 'run:end']));
  });
});

describe('c.runOnce: local work shared by the sites that ask for the same key', () => {
  /** Sites 1-2 deploy working copy A, site 3 working copy B: each copy is built once, whatever the parallelism. */
  const byCopy = (name: string) => (name === 'site03' ? '/src/b' : '/src/a');
  const keyed: DeployfileConfig['tasks'] = {
    deploy: async (c) => {
      const dir = byCopy(c.site.name);
      const built = await c.runOnce(`build:${dir}`, `build ${dir}`, async (local) => {
        await local.cd(dir).local('make build');
        return `${dir}@1`;
      });
      c.report(`built ${built}`);
      await c.run(`deploy ${built}`);
    },
  };

  it('runs once per distinct key at --parallel 3, hands each site its own key\'s result, and the summary shows it', async () => {
    const { outcome, fleet, local, events } = await run({ n: 3, parallel: 3, taskDefs: keyed, perSite: () => ({ script: () => ({ delayMs: 5 }) }) });
    expect(outcome.exitCode).toBe(0);
    expect([...local.commands].sort()).toEqual(['cd /src/a && make build', 'cd /src/b && make build']);
    expect(fleet.commandsOf('site01')).toContain("deploy /src/a@1");
    expect(fleet.commandsOf('site03')).toContain("deploy /src/b@1");
    expect(outcome.summary.map((row) => row.notes)).toEqual([['built /src/a@1'], ['built /src/a@1'], ['built /src/b@1']]);
    const starts = events.filter((e) => e.type === 'task:start' && e.site === null).map((e) => (e as { task: string }).task);
    expect(starts.sort()).toEqual(['build /src/a', 'build /src/b']);
  });

  it('a failure fails only the sites that share the key, and names the shared work', async () => {
    const failing: DeployfileConfig['tasks'] = {
      deploy: async (c) => {
        const dir = byCopy(c.site.name);
        await c.runOnce(`build:${dir}`, `build ${dir}`, async (local) => {
          if (dir === '/src/a') local.abort('tests failed in /src/a');
        });
        await c.run('deploy');
      },
    };
    const { outcome } = await run({ n: 3, parallel: 3, taskDefs: failing });
    expect(outcome.exitCode).toBe(1);
    expect(outcome.summary.map((row) => [row.site, row.status, row.failedTask])).toEqual([
      ['site01', 'aborted', 'build /src/a'],
      ['site02', 'aborted', 'build /src/a'],
      ['site03', 'ok', undefined],
    ]);
  });
});

describe('a command with a label', () => {
  it('is called by its label in views, errors and the summary, while --json keeps the exact line', async () => {
    const script = "sh -c 'a long script' switch pkg 1234";
    const { outcome, events } = await run({
      n: 1,
      taskDefs: { deploy: async (c) => void (await c.run(script, { label: 'switch to 1234' })) },
      perSite: () => ({ script: (cmd) => (cmd.includes('a long script') ? { exitCode: 1, stderr: 'refused\n' } : undefined) }),
    });
    const start = events.find((e) => e.type === 'command:start') as { command: string; composed: string };
    expect(start.command).toBe('switch to 1234');
    expect(start.composed).toBe(script);
    expect(outcome.summary[0]?.failedCommand).toBe('switch to 1234');
    expect(outcome.summary[0]?.error).toContain('switch to 1234');
    expect(outcome.summary[0]?.error).not.toContain('a long script');
  });
});
