import { describe, expect, it } from 'vitest';
import { coalescedOut } from '../../src/views/coalesced-out.ts';

/** A stream that records each write it gets. */
function recorder() {
  const writes: string[] = [];
  return { writes, stream: { write: (text: string) => (writes.push(text), true) } as unknown as NodeJS.WritableStream };
}
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('coalescedOut: the line views off a terminal', () => {
  it('sends the lines of one event-loop turn as one write, in order, and nothing is lost', async () => {
    const { writes, stream } = recorder();
    const out = coalescedOut(stream);
    for (let i = 0; i < 100; i++) out.write(`[s${i % 3}] line ${i}\n`);
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBe(Array.from({ length: 100 }, (_, i) => `[s${i % 3}] line ${i}\n`).join(''));
    out.write('later\n');
    await nextTurn();
    expect(writes).toEqual([writes[0], 'later\n']);
    out.close();
  });

  it('never holds more than its limit: a flood goes out as it comes', () => {
    const { writes, stream } = recorder();
    const out = coalescedOut(stream, 1000);
    for (let i = 0; i < 50; i++) out.write(`${'x'.repeat(99)}\n`);
    // 50 lines of 100 bytes with a 1000-byte limit: five full writes, nothing waiting for the turn.
    expect(writes.map((w) => w.length)).toEqual([1000, 1000, 1000, 1000, 1000]);
    out.close();
  });

  it('close (the run is over) writes what waits at once', () => {
    const { writes, stream } = recorder();
    const out = coalescedOut(stream);
    out.write('done in 1.2s (exit 0)\n');
    out.close();
    expect(writes).toEqual(['done in 1.2s (exit 0)\n']);
  });
});
