/**
 * A bounded request loop through the front server while something reloads:
 * one GET at a time, a new one every `intervalMs`, each with its own
 * timeout, counting what did not come back 200. It measures what visitors
 * see during a reload (the issue's "requests failed"); the tests report it
 * rather than assert a number, since timings belong in bench/.
 *
 * @example
 * const loop = startRequestLoop(`${nginx.urls.shop}revision`);
 * await deploy(['run', 'deploy']);
 * const { total, failed } = await loop.stop(); // e.g. { total: 61, failed: 0, ... }
 */
export interface RequestLoopResult {
  total: number;
  failed: number;
  /** How the failures looked, e.g. `{ "HTTP 502": 3, "timeout": 1 }`. */
  failures: Record<string, number>;
  /** The longest a single request took, in ms (queued requests during a graceful reload show here). */
  slowestMs: number;
}

export interface RequestLoop {
  stop(): Promise<RequestLoopResult>;
}

export function startRequestLoop(url: string, intervalMs = 50, timeoutMs = 10_000, maxRequests = 2_000): RequestLoop {
  const result: RequestLoopResult = { total: 0, failed: 0, failures: {}, slowestMs: 0 };
  let stopping = false;
  const fail = (why: string) => {
    result.failed++;
    result.failures[why] = (result.failures[why] ?? 0) + 1;
  };
  const loop = (async () => {
    while (!stopping && result.total < maxRequests) {
      const started = performance.now();
      result.total++;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { connection: 'close' } });
        await res.text();
        if (res.status !== 200) fail(`HTTP ${res.status}`);
      } catch (error) {
        fail((error as Error).name === 'TimeoutError' ? 'timeout' : 'no connection');
      }
      const took = performance.now() - started;
      result.slowestMs = Math.max(result.slowestMs, Math.round(took));
      if (took < intervalMs) await new Promise((resolve) => setTimeout(resolve, intervalMs - took));
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return result;
    },
  };
}

/** One line for a report: `61 requests, 0 failed, slowest 840 ms`. */
export function describeRequestLoop(r: RequestLoopResult): string {
  const how = Object.entries(r.failures).map(([why, n]) => `${n}× ${why}`).join(', ');
  return `${r.total} requests, ${r.failed} failed${how ? ` (${how})` : ''}, slowest ${r.slowestMs} ms`;
}
