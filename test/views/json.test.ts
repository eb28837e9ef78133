import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DeployEvent } from '../../src/core/event-schema.ts';
import { EventBus } from '../../src/core/events.ts';
import { JsonView } from '../../src/views/json.ts';

function capture() {
  const out = new PassThrough();
  let text = '';
  out.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { out, lines: () => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('--json view', () => {
  it('writes each event as one line of JSON with version, run id and timestamp', () => {
    const { out, lines } = capture();
    const bus = new EventBus('run-1');
    bus.on(new JsonView(out).handle);
    bus.emit({ type: 'site:start', site: 'alleged', target: 'alleged@web1:22' });
    bus.emit({ type: 'output', site: 'alleged', commandId: 'c1', stream: 'stdout', chunk: 'line one\nline "two"\n' });
    const [start, output] = lines();
    expect(start).toMatchObject({ v: 1, runId: 'run-1', type: 'site:start', site: 'alleged' });
    expect(Date.parse(String(start?.ts))).not.toBeNaN();
    expect(output?.chunk).toBe('line one\nline "two"\n');
    for (const line of lines()) expect(DeployEvent.safeParse(line).success).toBe(true);
  });

  it('drops fields the schema does not document', () => {
    const { out, lines } = capture();
    const view = new JsonView(out);
    view.handle({ v: 1, runId: 'r', ts: new Date().toISOString(), type: 'site:start', site: 'a', target: 'a@h:22', internal: 'x' } as DeployEvent);
    expect(lines()[0]).not.toHaveProperty('internal');
  });

  it('an event that breaks its schema (a bug) becomes a valid error log line, never an invalid line', () => {
    const { out, lines } = capture();
    const view = new JsonView(out);
    view.handle({ v: 1, runId: 'r', ts: new Date().toISOString(), type: 'command:end', site: 'a', commandId: 'c1', exitCode: 'zero' } as unknown as DeployEvent);
    const [line] = lines();
    expect(DeployEvent.parse(line)).toMatchObject({ type: 'log', level: 'error', site: 'a' });
    expect(String(line?.message)).toMatch(/command:end event did not match its schema \(exitCode: /);
  });
});
