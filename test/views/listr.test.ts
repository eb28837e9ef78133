import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.ts';
import { ListrView } from '../../src/views/listr.ts';

describe('the listr view (its non-TTY renderer)', () => {
  it("a site's question goes to its running task row, and nowhere once the site is done", async () => {
    const out = new PassThrough();
    const view = new ListrView(out as unknown as NodeJS.WriteStream);
    const bus = new EventBus('r');
    bus.on(view.handle);
    bus.emit({ type: 'run:start', tasks: ['deploy', 'migrate'], sites: [{ site: 'web1', target: 'deploy@web1:22' }], dryRun: false, deployfile: 'deployfile.ts' });
    bus.emit({ type: 'task:start', site: 'web1', task: 'deploy', taskId: 't1', parentTaskId: null, once: false });
    bus.emit({ type: 'task:end', site: 'web1', task: 'deploy', taskId: 't1', status: 'ok', durationMs: 5 });
    bus.emit({ type: 'task:start', site: 'web1', task: 'migrate', taskId: 't2', parentTaskId: null, once: false });
    // listr2 starts the row's task on its own schedule.
    for (let i = 0; i < 50 && view.rowFor('web1')?.title !== 'migrate'; i++) await sleep(10);
    expect(view.rowFor('web1')?.title).toBe('migrate');
    expect(view.rowFor('nowhere')).toBeUndefined();
    bus.emit({ type: 'task:end', site: 'web1', task: 'migrate', taskId: 't2', status: 'ok', durationMs: 5 });
    bus.emit({ type: 'site:end', site: 'web1', target: 'deploy@web1:22', status: 'ok', durationMs: 10 });
    bus.emit({ type: 'run:end', status: 'ok', exitCode: 0, durationMs: 10, summary: [{ site: 'web1', target: 'deploy@web1:22', status: 'ok', durationMs: 10 }] });
    await view.finish(undefined);
    expect(view.rowFor('web1')).toBeUndefined();
  });
});
