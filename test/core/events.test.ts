import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/core/events.ts';

describe('the event bus', () => {
  it('hands out command ids per run: each run counts from c1, whatever ran before it in the process', () => {
    const first = new EventBus('run-1');
    expect([first.nextCommandId(), first.nextCommandId()]).toEqual(['c1', 'c2']);
    const second = new EventBus('run-2');
    expect(second.nextCommandId()).toBe('c1');
    expect(first.nextCommandId()).toBe('c3');
  });

  it('stamps each event with the version, the run id and a timestamp, for every listener in order', () => {
    const bus = new EventBus('run-1');
    const seen: string[] = [];
    bus.on((e) => seen.push(`a ${e.type} ${e.runId} ${e.v}`));
    const off = bus.on((e) => seen.push(`b ${e.type}`));
    bus.emit({ type: 'log', site: null, level: 'info', message: 'hello' });
    off();
    bus.emit({ type: 'log', site: null, level: 'info', message: 'again' });
    expect(seen).toEqual(['a log run-1 1', 'b log', 'a log run-1 1']);
  });
});
