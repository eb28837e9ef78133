/**
 * Connecting again when a server turns a connection away for a moment:
 * OpenSSH's `MaxStartups` drops handshakes beyond its limit (the client sees
 * a reset or a connection closed before the banner), and a deploy to twenty
 * sites on one host hits it. Only failures the transport marks `transient`
 * are retried; authentication and host-key refusals never are.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionError, InterruptedError } from '../core/errors.ts';
import type { ExecOptions, ExecResult, Transport } from '../transports/transport.ts';

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

/**
 * A transport whose connecting retries transient failures with backoff.
 * Only connecting is retried: once connected, a lost connection fails the
 * command that was running, and nothing is ever re-run on its own.
 *
 * @example
 * const transport = retryingConnect(sshTransportFor(site, ssh), { signal, onRetry: ({ error, delayMs }) => log(`${error.message}; retrying in ${delayMs} ms`) });
 */
export function retryingConnect(inner: Transport, options: RetryOptions = {}): Transport {
  const policy = options.policy ?? DEFAULT_CONNECT_RETRY;
  let connected: Promise<void> | undefined;

  const attemptAll = async (): Promise<void> => {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (options.signal?.aborted) throw new InterruptedError(`interrupted while connecting to ${inner.target}`);
      try {
        // The signal reaches the handshake itself: Ctrl-C does not wait out ConnectTimeout.
        await inner.connect(options.signal);
        return;
      } catch (error) {
        if (!(error instanceof ConnectionError) || !error.transient) throw error;
        if (attempt >= policy.attempts) throw gaveUp(error, attempt, started);
        const delayMs = backoffDelay(attempt, policy, options.random);
        if (policy.maxElapsedMs !== undefined && Date.now() - started + delayMs > policy.maxElapsedMs) throw gaveUp(error, attempt, started);
        options.onRetry?.({ error, attempt, attempts: policy.attempts, delayMs });
        try {
          await sleep(delayMs, undefined, { signal: options.signal });
        } catch {
          throw new InterruptedError(`interrupted while connecting to ${inner.target}`);
        }
      }
    }
  };

  const connect = (): Promise<void> => {
    connected ??= attemptAll().catch((error: unknown) => {
      connected = undefined;
      throw error;
    });
    return connected;
  };

  return {
    get target() {
      return inner.target;
    },
    get usable() {
      return inner.usable;
    },
    connect,
    async exec(command: string, execOptions: ExecOptions): Promise<ExecResult> {
      await connect();
      return inner.exec(command, execOptions);
    },
    async put(localPath: string, remotePath: string): Promise<void> {
      await connect();
      return inner.put(localPath, remotePath);
    },
    async get(remotePath: string, localPath: string): Promise<void> {
      await connect();
      return inner.get(remotePath, localPath);
    },
    close: () => inner.close(),
  };
}

/** A transient failure retried until the policy ran out: the message says it was retried, how often and for how long. */
function gaveUp(error: ConnectionError, attempts: number, started: number): ConnectionError {
  if (attempts <= 1) return error;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  return new ConnectionError(`${error.message} (gave up after ${attempts} attempts in ${seconds} s)`, error.site, true, { cause: error, command: error.command });
}
