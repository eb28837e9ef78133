// How a run stops (a signal's reason, the deadline), what an escaped error
// does to its site, and when a stopped site's hung task is let go: the
// executor in-process, with fake transports.
import { describe, expect, it } from 'vitest';
import type { DeployfileConfig } from '../../src/config/define.ts';
import { validateDeployfile } from '../../src/config/validate.ts';
import { DeployEvent } from '../../src/core/event-schema.ts';
import { EventBus } from '../../src/core/events.ts';
import { Escapes } from '../../src/executor/escapes.ts';
import { execute, type ExecuteOptions } from '../../src/executor/executor.ts';
import { HandshakeLimiter } from '../../src/executor/handshakes.ts';
import { Activity, settleOrLetGo } from '../../src/executor/activity.ts';
import { shortDuration, signalExitCode, signalStop } from '../../src/executor/stop.ts';
import { PolicyPrompter } from '../../src/prompts/prompter.ts';
import { FakeFleet, FakeTransport } from '../helpers/fake-transport.ts';

async function run(tasks: DeployfileConfig['tasks'], names: string[], { siteNames = ['alpha', 'bravo'], ...options }: Partial<Omit<ExecuteOptions, 'sites'>> & { siteNames?: string[] } = {}) {
  const deployfile = validateDeployfile({ sites: Object.fromEntries(siteNames.map((name) => [name, { host: 'web1.example.com' }])), tasks }, '/work/deployfile.ts');
  const fleet = new FakeFleet(() => ({ script: (cmd) => (cmd.startsWith('sleep') ? { delayMs: Number(cmd.split(' ')[1]) * 1000 } : undefined) }));
  const bus = new EventBus('run-test');
  const events: DeployEvent[] = [];
  bus.on((event) => events.push(event));
  const outcome = await execute({
    locks: false,
    deployfile,
    tasks: names,
    sites: deployfile.sites,
    bus,
    prompter: new PolicyPrompter({ yes: false, onFailure: 'abort' }),
    transportFor: fleet.transportFor,
    local: new FakeTransport('local'),
    handshakes: new HandshakeLimiter(8),
    parallel: 2,
    letGoAfterMs: 100,
    ...options,
  });
  return { outcome, events, fleet };
}

describe('exit codes of a stopped run', () => {
  it('128 + the signal number, as shells report a killed process', () => {
    expect(signalExitCode('SIGHUP')).toBe(129);
    expect(signalExitCode('SIGINT')).toBe(130);
    expect(signalExitCode('SIGTERM')).toBe(143);
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('a run stopped by %s is interrupted, exit %i; a bare abort stays Ctrl-C (130)', async (signal, code) => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(signalStop(signal)), 50);
    const { outcome } = await run({ migrate: async (c) => void (await c.run('sleep 5')) }, ['migrate'], { signal: controller.signal });
    expect(outcome.status).toBe('interrupted');
    expect(outcome.exitCode).toBe(code);
    expect(outcome.summary.map((row) => row.status)).toEqual(['interrupted', 'interrupted']);

    const bare = new AbortController();
    setTimeout(() => bare.abort(), 50);
    expect((await run({ migrate: async (c) => void (await c.run('sleep 5')) }, ['migrate'], { signal: bare.signal })).outcome.exitCode).toBe(130);
  });

  it('the deadline fails the sites it cut short (exit 1) and says so in the summary', async () => {
    const started = Date.now();
    const { outcome, events } = await run({ migrate: async (c) => void (await c.run('sleep 5')) }, ['migrate'], { deadlineMs: 100 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(outcome).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(outcome.summary[0]).toMatchObject({ status: 'failed', failedTask: 'migrate', failedCommand: 'sleep 5' });
    expect(outcome.summary[0]?.error).toMatch(/^the run's deadline \(--deadline 100ms\) passed; interrupted during: sleep 5/);
    expect(events.some((e) => e.type === 'log' && e.message.startsWith("the run's deadline (--deadline 100ms) passed"))).toBe(true);
  });
});

describe('a task that never settles', () => {
  it('is let go once the run stops and none of its commands runs; the site names the task, and the rest of the run goes on', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(signalStop('SIGINT')), 100);
    const { outcome, events } = await run(
      { hang: async (c) => { await c.run('echo hi'); await new Promise(() => {}); }, after: async (c) => void (await c.run('echo after')) },
      ['hang', 'after'],
      { signal: controller.signal, siteNames: ['alpha'] },
    );
    expect(outcome.exitCode).toBe(130);
    expect(outcome.summary[0]).toMatchObject({ status: 'interrupted', failedTask: 'hang', tasksNotRun: ['after'] });
    expect(outcome.summary[0]?.error).toBe('task hang did not finish (no command running) 100ms after Ctrl-C (SIGINT); stopped waiting for it');
    expect(outcome.leftPending).toEqual(['hang on alpha']);
    // Every view sees the task end.
    expect(events.filter((e) => e.type === 'task:end' && e.task === 'hang')).toHaveLength(1);
  });

  it('a command being ended is waited for, not given up on', async () => {
    const activity = new Activity();
    const controller = new AbortController();
    let finish!: () => void;
    const command = activity.track(() => new Promise<void>((resolve) => (finish = resolve)));
    const work = command.then(() => 'done');
    const settled = settleOrLetGo(work, { signal: controller.signal, activities: [activity], graceMs: 20, hung: () => new Error('hung') });
    controller.abort();
    await new Promise((resolve) => setTimeout(resolve, 100));
    finish();
    await expect(settled).resolves.toBe('done');
  });

  it('a nested task that hangs is the one named', async () => {
    const { outcome } = await run(
      { outer: async (c) => { await c.invoke('inner'); }, inner: async () => { await new Promise(() => {}); } },
      ['outer'],
      { deadlineMs: 50, siteNames: ['alpha'] },
    );
    expect(outcome.summary[0]).toMatchObject({ status: 'failed', failedTask: 'inner' });
    expect(outcome.summary[0]?.error).toBe("task inner did not finish (no command running) 100ms after the run's deadline (--deadline 50ms); stopped waiting for it");
  });
});

describe('an error escaping a task', () => {
  it("fails only the site whose task it came from, naming the task; that site's other command is ended", async () => {
    const escapes = new Escapes();
    const { outcome, fleet } = await run(
      {
        deploy: async (c) => {
          if (c.site.name === 'alpha') {
            // What the CLI's unhandledRejection handler does, from inside the task's async context.
            setTimeout(() => escapes.contain(new Error('boom in a timer')), 20);
            await c.run('sleep 5');
            await c.run('never');
          } else {
            await c.run('sleep 0.2');
          }
        },
      },
      ['deploy'],
      { escapes },
    );
    expect(outcome.exitCode).toBe(1);
    expect(outcome.summary[0]).toMatchObject({ site: 'alpha', status: 'failed', failedTask: 'deploy' });
    expect(outcome.summary[0]?.error).toBe('an error escaped task deploy (thrown in a callback, or a promise nobody awaited): boom in a timer');
    expect(outcome.summary[1]).toMatchObject({ site: 'bravo', status: 'ok' });
    expect(fleet.commandsOf('alpha')).not.toContain('never');
    expect(escapes.seen).toBe(1);
  });

  it('is not contained outside every task (the CLI reports it)', () => {
    expect(new Escapes().contain(new Error('elsewhere'))).toBe(false);
  });
});

it('durations read as typed', () => {
  expect([shortDuration(3000), shortDuration(600_000), shortDuration(90_000), shortDuration(3_600_000), shortDuration(1500)]).toEqual(['3s', '10m', '1m30s', '1h', '1.5s']);
});
