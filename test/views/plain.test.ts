import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.ts';
import { PlainView } from '../../src/views/plain.ts';

function capture() {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { out, lines: () => text.split('\n').filter((line) => line !== '') };
}

describe('the plain view', () => {
  it('a run with a failure: one line per thing, each tagged with its site, the failure and its verdict', () => {
    const { out, lines } = capture();
    const bus = new EventBus('r');
    bus.on(new PlainView({ out, color: false, showOutput: true }).handle);
    const sites = [
      { site: 'web1', target: 'deploy@web1:22' },
      { site: 'web2', target: 'deploy@web2:22' },
    ];
    bus.emit({ type: 'run:start', tasks: ['deploy'], sites, dryRun: false, deployfile: 'deployfile.ts' });
    for (const { site, target } of sites) bus.emit({ type: 'site:start', site, target });
    bus.emit({ type: 'task:start', site: 'web1', task: 'deploy', taskId: 't1', parentTaskId: null, once: false });
    bus.emit({ type: 'command:start', site: 'web1', taskId: 't1', commandId: 'c1', command: 'git pull', composed: 'cd app && git pull', where: 'remote' });
    bus.emit({ type: 'output', site: 'web1', commandId: 'c1', stream: 'stdout', chunk: 'Already up to date.\npartial' });
    bus.emit({ type: 'command:end', site: 'web1', commandId: 'c1', exitCode: 0, signal: null, timedOut: false, ok: true, durationMs: 120 });
    bus.emit({ type: 'task:end', site: 'web1', task: 'deploy', taskId: 't1', status: 'ok', durationMs: 150 });
    bus.emit({ type: 'task:start', site: 'web2', task: 'deploy', taskId: 't2', parentTaskId: null, once: false });
    bus.emit({ type: 'command:start', site: 'web2', taskId: 't2', commandId: 'c2', command: 'git pull', composed: 'cd app && git pull', where: 'remote' });
    bus.emit({ type: 'output', site: 'web2', commandId: 'c2', stream: 'stderr', chunk: 'fatal: not a git repository\n' });
    bus.emit({ type: 'command:end', site: 'web2', commandId: 'c2', exitCode: 128, signal: null, timedOut: false, ok: false, durationMs: 80 });
    bus.emit({ type: 'prompt', site: 'web2', kind: 'failure', question: 'Command failed with exit code 128', answer: 'abort', by: 'policy' });
    bus.emit({ type: 'task:end', site: 'web2', task: 'deploy', taskId: 't2', status: 'failed', durationMs: 90, error: 'Command failed with exit code 128' });
    bus.emit({ type: 'site:end', site: 'web1', target: 'deploy@web1:22', status: 'ok', durationMs: 200 });
    bus.emit({ type: 'site:end', site: 'web2', target: 'deploy@web2:22', status: 'failed', durationMs: 100, failedTask: 'deploy', failedCommand: 'git pull', error: 'Command failed with exit code 128' });
    bus.emit({
      type: 'run:end',
      status: 'failed',
      exitCode: 1,
      durationMs: 1500,
      summary: [
        { site: 'web1', target: 'deploy@web1:22', status: 'ok', durationMs: 200 },
        { site: 'web2', target: 'deploy@web2:22', status: 'failed', durationMs: 100, failedTask: 'deploy', failedCommand: 'git pull', error: 'Command failed with exit code 128' },
      ],
    });
    const all = lines();
    expect(all.slice(0, 14)).toEqual([
      'deploy on 2 sites (deployfile.ts)',
      '[web1] start (deploy@web1:22)',
      '[web2] start (deploy@web2:22)',
      '[web1] ▶ deploy',
      '[web1] $ git pull',
      '[web1]   Already up to date.',
      // The unfinished line is printed when its command ends.
      '[web1]   partial',
      '[web1] ✔ deploy (150ms)',
      '[web2] ▶ deploy',
      '[web2] $ git pull',
      '[web2]   fatal: not a git repository',
      '[web2]   ✖ exit code 128 after 80ms',
      '[web2] ? Command failed with exit code 128 abort (answered by policy: no TTY, CI or --json; see --yes / --on-failure)',
      '[web2] ✖ deploy failed: Command failed with exit code 128',
    ]);
    expect(all.at(-1)).toBe('failed in 1.5s (exit 1)');
  });

  it('a line split across chunks prints whole, once, per site and stream; the rest at the command\'s end', () => {
    const { out, lines } = capture();
    const bus = new EventBus('r');
    bus.on(new PlainView({ out, color: false, showOutput: true }).handle);
    bus.emit({ type: 'command:start', site: 'web1', taskId: 't1', commandId: 'c1', command: 'make', composed: 'make', where: 'remote' });
    bus.emit({ type: 'command:start', site: 'web2', taskId: 't2', commandId: 'c2', command: 'make', composed: 'make', where: 'remote' });
    const chunk = (site: string, commandId: string, stream: 'stdout' | 'stderr', text: string) =>
      bus.emit({ type: 'output', site, commandId, stream, chunk: text });
    chunk('web1', 'c1', 'stdout', 'compil');
    chunk('web1', 'c1', 'stderr', 'warn');
    chunk('web2', 'c2', 'stdout', 'link');
    chunk('web1', 'c1', 'stderr', 'ing: deprecated\n');
    chunk('web1', 'c1', 'stdout', 'ing main.c\nlinking');
    chunk('web2', 'c2', 'stdout', 'ed\n');
    expect(lines().filter((line) => !line.includes('$'))).toEqual(['[web1]   warning: deprecated', '[web1]   compiling main.c', '[web2]   linked']);
    bus.emit({ type: 'command:end', site: 'web1', commandId: 'c1', exitCode: 0, signal: null, timedOut: false, ok: true, durationMs: 1 });
    expect(lines().at(-1)).toBe('[web1]   linking');
  });

  it('a dry run shows the composed line, as it would be sent', () => {
    const { out, lines } = capture();
    const bus = new EventBus('r');
    bus.on(new PlainView({ out, color: false, showOutput: false }).handle);
    bus.emit({ type: 'run:start', tasks: ['deploy'], sites: [{ site: 'web1', target: 'deploy@web1:22' }], dryRun: true, deployfile: 'deployfile.ts' });
    bus.emit({ type: 'command:start', site: 'web1', taskId: 't1', commandId: 'c1', command: 'git pull', composed: 'cd app && git pull', where: 'remote' });
    bus.emit({ type: 'output', site: 'web1', commandId: 'c1', stream: 'stdout', chunk: 'hidden\n' });
    expect(lines()).toEqual(['Dry run: deploy on 1 site (deployfile.ts)', '[web1] $ cd app && git pull']);
  });
});

describe('the plain view summary off a terminal', () => {
  function summaryOf(isTTY: boolean): string[] {
    const { out, lines } = capture();
    Object.assign(out, { isTTY, columns: 80 });
    const bus = new EventBus('r');
    bus.on(new PlainView({ out, color: false, showOutput: true }).handle);
    const failedCommand = `git push --force-with-lease origin ${'feature/'.repeat(12)}main`;
    const summary = [
      { site: 'web1', target: 'deploy@web1:22', status: 'ok' as const, durationMs: 1200 },
      { site: 'web2', target: 'deploy@web2:22', status: 'failed' as const, durationMs: 4100, failedTask: 'push', failedCommand },
    ];
    bus.emit({ type: 'run:end', status: 'failed', exitCode: 1, durationMs: 4200, summary });
    return lines();
  }

  it('keeps a long result on its row in a log (greppable), and under its row on an 80-column terminal', () => {
    const log = summaryOf(false);
    expect(log.find((line) => line.includes('web2'))).toMatch(/^ {2}web2\s+failed at push: git push --force-with-lease origin (feature\/){12}main\s+4\.1s$/);
    const tty = summaryOf(true);
    const row = tty.findIndex((line) => line.includes('web2'));
    expect(tty[row]).toMatch(/^ {2}web2\s+failed at push\s+4\.1s$/);
    expect(tty[row + 1]).toMatch(/^\s+git push --force-with-lease/);
    // The row itself fits; the detail under it may wrap without pushing the duration column.
    expect(tty[row]!.length).toBeLessThan(80);
  });
});
