import { pool } from './pool.ts';

/** How sites are started: `--parallel`, `--batch`, `--max-failures`. */
export interface SchedulePolicy {
  /** Most sites running at once (at least 1). */
  parallel: number;
  /**
   * Rolling batches of this many sites: a batch starts only when the one
   * before it has ended, and only while fewer than `maxFailures` sites have
   * failed (1 unless given: one failure stops the rollout).
   */
  batch?: number;
  /** After this many failed sites no new site starts; undefined: no limit (1 with `batch`). */
  maxFailures?: number;
}

export interface ScheduleHooks<T, R> {
  work: (item: T, index: number) => Promise<R>;
  /** The result for an item that was never started. */
  notStarted: (item: T, index: number) => R;
  /** Whether a finished item counts towards `maxFailures`. */
  failed: (result: R) => boolean;
  /** Asked before each start; false stops starting (Ctrl-C, a failed run-once task). */
  shouldStart?: () => boolean;
}

/** The failure limit in force: `maxFailures`, else 1 for batches, else none. */
export function effectiveMaxFailures(policy: SchedulePolicy): number {
  return policy.maxFailures ?? (policy.batch !== undefined ? 1 : Number.POSITIVE_INFINITY);
}

/**
 * Runs `work` over `items` under a policy and returns the results in the
 * order of `items`; items never started get `notStarted`. Sites start in
 * order, so with `--batch 5` sites 1-5 form the first batch, 6-10 the next.
 *
 * @example
 * await schedule(sites, { parallel: 5, batch: 10, maxFailures: 2 }, { work: runSite, notStarted, failed: (r) => r.status !== 'ok' });
 */
export async function schedule<T, R>(items: readonly T[], policy: SchedulePolicy, hooks: ScheduleHooks<T, R>): Promise<R[]> {
  const limit = effectiveMaxFailures(policy);
  let failures = 0;
  const canStart = (): boolean => failures < limit && (hooks.shouldStart?.() ?? true);
  const work = async (item: T, index: number): Promise<R> => {
    const result = await hooks.work(item, index);
    if (hooks.failed(result)) failures++;
    return result;
  };
  const parallel = Math.max(1, Math.floor(policy.parallel));
  if (policy.batch === undefined) return pool(items, parallel, work, hooks.notStarted, canStart);

  const size = Math.max(1, Math.floor(policy.batch));
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    const chunk = items.slice(start, start + size);
    const offset = start;
    results.push(
      ...(await pool(
        chunk,
        Math.min(parallel, size),
        (item, i) => work(item, offset + i),
        (item, i) => hooks.notStarted(item, offset + i),
        canStart,
      )),
    );
  }
  return results;
}
