import { describe, expect, it } from 'vitest';
import { effectiveMaxFailures, schedule } from '../../src/executor/schedule.ts';

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `schedule` over n items, recording what ran when; items in `failing` fail. */
async function trace(n: number, policy: Parameters<typeof schedule>[1], failing: number[] = []) {
  let active = 0;
  let peak = 0;
  const log: string[] = [];
  const results = await schedule(
    Array.from({ length: n }, (_, i) => i),
    policy,
    {
      work: async (i) => {
        active++;
        peak = Math.max(peak, active);
        log.push(`start ${i}`);
        await tick(failing.includes(i) ? 2 : 5 + (i % 3));
        log.push(`end ${i}`);
        active--;
        return failing.includes(i) ? 'failed' : 'ok';
      },
      notStarted: () => 'not-started',
      failed: (r) => r === 'failed',
    },
  );
  return { results, peak, log };
}

describe('schedule', () => {
  it('runs at most `parallel` at once and returns results in item order', async () => {
    const { results, peak } = await trace(12, { parallel: 4 });
    expect(peak).toBe(4);
    expect(results).toEqual(Array(12).fill('ok'));
  });

  it('one failure alone stops nothing without --max-failures', async () => {
    const { results } = await trace(6, { parallel: 2 }, [0]);
    expect(results).toEqual(['failed', 'ok', 'ok', 'ok', 'ok', 'ok']);
  });

  it('--max-failures K: no site starts after K failed; running ones finish', async () => {
    const { results } = await trace(7, { parallel: 1, maxFailures: 2 }, [1, 3, 5]);
    expect(results).toEqual(['ok', 'failed', 'ok', 'failed', 'not-started', 'not-started', 'not-started']);
    // In parallel, a site already running when the K-th failure lands still finishes.
    const wide = await trace(6, { parallel: 3, maxFailures: 1 }, [0]);
    expect(wide.results.slice(0, 3)).toEqual(['failed', 'ok', 'ok']);
    expect(wide.results.slice(3)).toEqual(['not-started', 'not-started', 'not-started']);
  });

  it('--batch N: a batch starts only when the previous one has ended', async () => {
    const { results, log, peak } = await trace(7, { parallel: 100, batch: 3 });
    expect(results).toEqual(Array(7).fill('ok'));
    expect(peak).toBe(3);
    const endOfBatch1 = Math.max(...[0, 1, 2].map((i) => log.indexOf(`end ${i}`)));
    const startOfBatch2 = Math.min(...[3, 4, 5].map((i) => log.indexOf(`start ${i}`)));
    expect(startOfBatch2).toBeGreaterThan(endOfBatch1);
    expect(log.indexOf('start 6')).toBeGreaterThan(Math.max(...[3, 4, 5].map((i) => log.indexOf(`end ${i}`))));
  });

  it('--batch N: a failure in a batch stops the rollout; the rest of that batch still finishes', async () => {
    const { results } = await trace(9, { parallel: 3, batch: 3 }, [4]);
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'failed', 'ok', 'not-started', 'not-started', 'not-started']);
  });

  it('--batch with --max-failures tolerates up to K-1 failures across batches', async () => {
    const { results } = await trace(9, { parallel: 3, batch: 3, maxFailures: 2 }, [1]);
    expect(results).toEqual(Array(9).fill('ok').map((r, i) => (i === 1 ? 'failed' : r)));
  });

  it('--parallel below the batch size caps each batch', async () => {
    const { peak } = await trace(8, { parallel: 2, batch: 4 });
    expect(peak).toBe(2);
  });

  it('stops starting when shouldStart says so (Ctrl-C)', async () => {
    let started = 0;
    const results = await schedule([1, 2, 3, 4], { parallel: 1 }, { work: async () => `ran ${++started}`, notStarted: () => 'not-started', failed: () => false, shouldStart: () => started < 2 });
    expect(results).toEqual(['ran 1', 'ran 2', 'not-started', 'not-started']);
  });

  it('knows the failure limit in force', () => {
    expect(effectiveMaxFailures({ parallel: 5 })).toBe(Number.POSITIVE_INFINITY);
    expect(effectiveMaxFailures({ parallel: 5, batch: 2 })).toBe(1);
    expect(effectiveMaxFailures({ parallel: 5, batch: 2, maxFailures: 3 })).toBe(3);
  });
});
