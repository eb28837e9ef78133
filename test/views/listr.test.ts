import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventBus } from '../../src/core/events.ts';
import { ListrView } from '../../src/views/listr.ts';

describe('the listr view (its non-TTY renderer)', () => {
  it("a question's board exists while the view runs, marks the asking site's row, and is gone once the view ended", async () => {
    const out = new PassThrough();
    const view = new ListrView(out as unknown as NodeJS.WriteStream);
    expect(await view.questionBoard('web1')).toBeUndefined();
    const bus = new EventBus('r');
    bus.on(view.handle);
    bus.emit({ type: 'run:start', tasks: ['deploy'], sites: [{ site: 'web1', target: 'deploy@web1:22' }], dryRun: false, deployfile: 'deployfile.ts' });
    bus.emit({ type: 'task:start', site: 'web1', task: 'deploy', taskId: 't1', parentTaskId: null, once: false });
    const board = await view.questionBoard('web1');
    expect(board?.columns).toBeGreaterThanOrEqual(20);
    board?.show('? Deploy web1?');
    // listr2 starts the row's task on its own schedule.
    for (let i = 0; i < 50 && !view.rowFor('web1')?.title?.includes('waiting for your answer'); i++) await sleep(10);
    expect(view.rowFor('web1')?.title).toContain('deploy ? waiting for your answer below');
    board?.clear();
    expect(view.rowFor('web1')?.title).toBe('deploy');
    bus.emit({ type: 'task:end', site: 'web1', task: 'deploy', taskId: 't1', status: 'ok', durationMs: 5 });
    bus.emit({ type: 'site:end', site: 'web1', target: 'deploy@web1:22', status: 'ok', durationMs: 10 });
    bus.emit({ type: 'run:end', status: 'ok', exitCode: 0, durationMs: 10, summary: [{ site: 'web1', target: 'deploy@web1:22', status: 'ok', durationMs: 10 }] });
    await view.finish(undefined);
    expect(view.rowFor('web1')).toBeUndefined();
    expect(await view.questionBoard('web1')).toBeUndefined();
  });

  it('after the last frame, every check grouped by site with its fix, then the checks table, then the summary', async () => {
    const out = new PassThrough();
    let text = '';
    out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const view = new ListrView(out as unknown as NodeJS.WriteStream);
    const bus = new EventBus('r');
    bus.on(view.handle);
    let end: Parameters<typeof view.finish>[0];
    bus.on((event) => {
      if (event.type === 'run:end') end = event;
    });
    bus.emit({ type: 'run:start', tasks: ['doctor'], sites: [{ site: 'shop', target: 'root@web1:22' }], dryRun: false, deployfile: 'deployfile.ts' });
    bus.emit({ type: 'task:start', site: 'shop', task: 'doctor', taskId: 't1', parentTaskId: null, once: false });
    bus.emit({ type: 'check', site: 'shop', task: 'doctor', name: 'socket', status: 'pass', detail: '/run/uwsgi/shop.sock' });
    bus.emit({ type: 'check', site: 'shop', task: 'doctor', name: 'socket dir', status: 'fail', detail: '/run/uwsgi is root:root 0755', fix: 'chmod 2775 /run/uwsgi' });
    bus.emit({ type: 'task:end', site: 'shop', task: 'doctor', taskId: 't1', status: 'failed', durationMs: 5, error: 'shop: 1 check failed: socket dir' });
    const row = { site: 'shop', target: 'root@web1:22', status: 'failed' as const, durationMs: 10, failedTask: 'doctor', error: 'shop: 1 check failed: socket dir' };
    bus.emit({ type: 'site:end', ...row });
    bus.emit({ type: 'run:end', status: 'failed', exitCode: 1, durationMs: 10, summary: [row] });
    await view.finish(end);
    // The listr view always colours (it runs on a TTY); read it without.
    const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
    const after = plain.slice(plain.indexOf('\nshop\n'));
    expect(after).toContain('✖ fail socket dir: /run/uwsgi is root:root 0755');
    expect(after).toContain('fix: chmod 2775 /run/uwsgi');
    expect(after.indexOf('✔ pass socket:')).toBeLessThan(after.indexOf('Checks: 1 site, 1 with failures'));
    expect(after.indexOf('Checks: 1 site')).toBeLessThan(after.indexOf('Summary:'));
  });
});

describe('the listr view on a terminal', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  async function finishedScreen(): Promise<string> {
    const out = Object.assign(new PassThrough(), { isTTY: true, columns: 100, rows: 40 });
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const view = new ListrView(out as unknown as NodeJS.WriteStream);
    const bus = new EventBus('r');
    bus.on(view.handle);
    const summary = [{ site: 'web1', target: 'deploy@web1:22', status: 'ok' as const, durationMs: 10 }];
    bus.emit({ type: 'run:start', tasks: ['deploy'], sites: [{ site: 'web1', target: 'deploy@web1:22' }], dryRun: false, deployfile: 'deployfile.ts' });
    bus.emit({ type: 'task:start', site: 'web1', task: 'deploy', taskId: 't1', parentTaskId: null, once: false });
    bus.emit({ type: 'task:end', site: 'web1', task: 'deploy', taskId: 't1', status: 'ok', durationMs: 5 });
    bus.emit({ type: 'site:end', site: 'web1', target: 'deploy@web1:22', status: 'ok', durationMs: 10 });
    bus.emit({ type: 'run:end', status: 'ok', exitCode: 0, durationMs: 10, summary });
    await view.finish({ type: 'run:end', status: 'ok', exitCode: 0, durationMs: 10, summary, v: 1, runId: 'r', ts: new Date().toISOString() });
    return text;
  }

  it('NO_COLOR means no colour in the summary and the verdict, TTY or not', async () => {
    vi.stubEnv('FORCE_COLOR', '');
    vi.stubEnv('TERM', 'xterm-256color');
    vi.stubEnv('NO_COLOR', '');
    expect(await finishedScreen()).toContain('\x1b[32m');
    vi.stubEnv('NO_COLOR', '1');
    const plain = await finishedScreen();
    expect(plain).toMatch(/web1\s+ok/);
    expect(plain).not.toMatch(/\x1b\[3\dm/);
  });
});
