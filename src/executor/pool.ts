/**
 * Run `work` over `items` with at most `limit` at once, in order of items.
 * `shouldStart` is asked before each item starts, so a run can stop
 * starting new sites (after an abort, Ctrl-C or too many failures).
 *
 * Hand-written rather than p-limit: an item that may not start must still
 * get its result (`skipped`, a "not started" row) in order, which p-limit's
 * queue cannot express without clearing it from outside; the loop is 15 lines.
 */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
  skipped: (item: T, index: number) => R,
  shouldStart: () => boolean = () => true,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      const item = items[index] as T;
      results[index] = shouldStart() ? await work(item, index) : skipped(item, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return results;
}
