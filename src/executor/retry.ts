/**
 * Connecting again when a server turns a connection away for a moment:
 * OpenSSH's `MaxStartups` drops handshakes beyond its limit (the client sees
 * a reset or a connection closed before the banner), and a deploy to twenty
 * sites on one host hits it. Only failures the transport marks `transient`
 * are retried; authentication and host-key refusals never are. The loop
 * itself is step 3 of SiteConnection (src/connection/site-connection.ts).
 * Hand-written rather than p-retry: the budget is attempts *and* elapsed
 * time, each wait is announced (the run says it retries, and finally when it
 * gave up), and only ConnectionErrors the transport marked transient count;
 * the policy and the backoff are a few lines of their own.
 */
import type { ConnectionError } from '../core/errors.ts';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Delay before the second attempt; doubled each time up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * No new attempt starts once this long has passed since the first: a host
   * that never answers costs a few ConnectTimeouts, not `attempts` of them.
   */
  maxElapsedMs?: number;
}

/** About 20 s of waits at most: enough for a loaded sshd to let 20 handshakes through. */
export const DEFAULT_CONNECT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 250, maxDelayMs: 8000, maxElapsedMs: 45_000 };

/** The wait before attempt `attempt + 1`: exponential with jitter, so sites that failed together don't return together. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface RetryOptions {
  policy?: RetryPolicy;
  /** Aborting (Ctrl-C) stops waiting and retrying. */
  signal?: AbortSignal;
  /** Jitter source; tests pass a constant. */
  random?: () => number;
  /** Told before each wait: the "says so" of a retry. */
  onRetry?: (info: { error: ConnectionError; attempt: number; attempts: number; delayMs: number }) => void;
}
