import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DeployEvent } from '../../src/core/event-schema.ts';
import { EventBus } from '../../src/core/events.ts';
import { checkLines, renderChecks } from '../../src/views/checks.ts';
import { PlainView } from '../../src/views/plain.ts';
import { style } from '../../src/views/style.ts';

const s = style(false);
const base = { v: 1 as const, runId: 'r', ts: 't', type: 'check' as const, task: 'doctor' };

describe('check lines and the checks table', () => {
  it('a check is one line; a fix and further detail lines go under it; a pass shows no fix', () => {
    expect(checkLines({ status: 'pass', name: 'socket', detail: 'ok', fix: 'ignored' }, s)).toEqual(['✔ pass socket: ok']);
    expect(checkLines({ status: 'fail', name: 'wsgi import', detail: "x does not load: ImportError\n  File \"w.py\", line 1", fix: 'install it' }, s)).toEqual([
      '✖ fail wsgi import: x does not load: ImportError',
      '      File "w.py", line 1',
      '    fix: install it',
    ]);
    expect(checkLines({ status: 'warn', name: 'pip check', detail: 'conflict', fix: 'none needed' }, s)[0]).toBe('! warn pip check: conflict');
  });

  it('the table counts per site and names what did not pass', () => {
    const table = renderChecks(
      [
        { ...base, site: 'shop', name: 'socket', status: 'pass', detail: '' },
        { ...base, site: 'shop', name: 'pip check', status: 'warn', detail: '' },
        { ...base, site: 'blog', name: 'vassal ini owner', status: 'fail', detail: '' },
        { ...base, site: 'blog', name: 'socket dir', status: 'fail', detail: '' },
      ],
      s,
    );
    expect(table.split('\n')).toEqual([
      'Checks: 2 sites, 1 with failures',
      '  site  pass  warn  fail  not passed',
      '  shop  1     1     0     warn: pip check',
      '  blog  0     0     2     fail: vassal ini owner, socket dir',
    ]);
    expect(renderChecks([], s)).toBe('');
  });

  it('the plain view prints each check tagged with its site, and the table before the summary', () => {
    const out = new PassThrough();
    let text = '';
    out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const bus = new EventBus('r');
    bus.on(new PlainView({ out, color: false, showOutput: true }).handle);
    bus.emit({ type: 'check', site: 'shop', task: 'doctor', name: 'socket dir', status: 'fail', detail: '/run/uwsgi is root:root 0755', fix: 'chmod 2775 /run/uwsgi' });
    bus.emit({ type: 'run:end', status: 'failed', exitCode: 1, durationMs: 10, summary: [{ site: 'shop', target: 'shop@web1:22', status: 'failed', durationMs: 10, failedTask: 'doctor', error: 'shop: 1 check failed: socket dir' }] });
    const lines = text.split('\n');
    expect(lines.slice(0, 2)).toEqual(['[shop] ✖ fail socket dir: /run/uwsgi is root:root 0755', '[shop]     fix: chmod 2775 /run/uwsgi']);
    expect(text.indexOf('Checks: 1 site, 1 with failures')).toBeLessThan(text.indexOf('Summary:'));
  });

  it('a check event is a valid event for --json', () => {
    expect(DeployEvent.safeParse({ ...base, site: 'shop', name: 'socket', status: 'warn', detail: 'd', fix: 'f' }).success).toBe(true);
    expect(DeployEvent.safeParse({ ...base, site: 'shop', name: 'socket', status: 'maybe', detail: 'd' }).success).toBe(false);
  });
});
