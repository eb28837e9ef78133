/**
 * A site's connection life, in one place and in this order:
 *
 *   1. handshake slot   wait for one of the run's HandshakeLimiter slots (sshd's MaxStartups)
 *   2. handshake        the transport connects (ssh config's ConnectTimeout; Ctrl-C aborts it)
 *   3. retry            a transient refusal frees the slot, waits (backoff), and goes back to 1;
 *                       anything else, and the last attempt, fail ("gave up after N attempts in T s")
 *   4. lock             when the run needs it, the site's deploy lock is taken on the new connection,
 *                       before the first command; a refusal (SiteLockedError) sticks
 *   5. commands         exec/put/get over the connection; keepalives are the transport's (ServerAlive*)
 *   6. release          the executor's finishSite() writes the history and releases the lock over this
 *                       connection while it works, else over `reopen()`: a new one (steps 1-3, no lock)
 *   7. close
 *
 * Connecting happens once: the first command (or connect()) starts steps 1-4,
 * later ones wait for the same promise; a failure other than a refused lock
 * lets a later command try again. preconnect() starts steps 1-3 early, in
 * the background (while the operator's machine runs the tests and pushes);
 * the first command then gets that handshake's outcome, a failure included,
 * so an unreachable host is not waited for twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectionError, InterruptedError } from '../core/errors.ts';
import type { EventBus } from '../core/events.ts';
import type { Redactor } from '../core/secret.ts';
import type { ExecOptions, ExecResult, Transport } from '../transports/transport.ts';
import { HandshakeLimiter } from '../executor/handshakes.ts';
import { acquireLock, SiteLockedError, type LockInfo } from './lock.ts';
import { backoffDelay, DEFAULT_CONNECT_RETRY, type RetryOptions, type RetryPolicy } from '../executor/retry.ts';

export interface SiteConnectionOptions {
  /** The site's name, for the lock's refusal; null for a connection of no site. */
  site?: string | null;
  /** A new, unconnected transport to the site; called once per connection (reopen() calls it again). */
  open: () => Transport;
  /** The run's handshake limiter; default none (no limit). */
  handshakes?: HandshakeLimiter;
  /** How transient refusals are retried; default DEFAULT_CONNECT_RETRY. */
  retry?: RetryPolicy;
  /** Told before each wait: the "says so" of a retry. */
  onRetry?: RetryOptions['onRetry'];
  /** Jitter source; tests pass a constant. */
  random?: () => number;
  /** Aborting (Ctrl-C) stops the handshake, the waits between attempts and the lock being taken. */
  signal?: AbortSignal;
  /** Take the site's deploy lock right after connecting. */
  lock?: LockInfo;
  /** Where the lock script's warnings go, and what it redacts (it runs through the runner). */
  bus?: EventBus;
  redactor?: Redactor;
}

/** Retries for the release of the lock over a new connection: a few, quickly. */
export const RELEASE_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 500, maxDelayMs: 2000 };

/**
 * One site's connection (see the sequence above).
 *
 * @example
 * const connection = new SiteConnection({ site: 'alleged', open: () => sshTransportFor(site, ssh), handshakes, signal, lock: lockInfo });
 * await connection.exec('uptime', {}); // slot, handshake (retried), lock, then the command
 */
export class SiteConnection implements Transport {
  private readonly transport: Transport;
  private ready: Promise<void> | undefined;
  /**
   * The handshake preconnect() started, until the first connect() takes it
   * over: its outcome, a failure included, is that connect()'s.
   */
  private early: Promise<void> | undefined;
  private lockHeld = false;
  /** Aborted by close(): a handshake preconnect() started must not outlive the site (and keep the process alive). */
  private readonly closing = new AbortController();

  constructor(private readonly options: SiteConnectionOptions) {
    this.transport = options.open();
  }

  get target(): string {
    return this.transport.target;
  }

  /** False once the connection was lost or given up. */
  get usable(): boolean | undefined {
    return this.transport.usable;
  }

  /** True once the site's lock is this run's: it must be released. */
  get held(): boolean {
    return this.lockHeld;
  }

  /**
   * Steps 1 to 4, once. `signal` (a command's timeout or Ctrl-C) stops the
   * wait for a handshake slot and the handshake started for that command.
   */
  connect(signal?: AbortSignal): Promise<void> {
    this.ready ??= this.establish(signal).catch((error: unknown) => {
      // A refused lock stays refused; a failed connection may be tried again by a later command.
      if (!(error instanceof SiteLockedError)) this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /**
   * Steps 1 to 3, started now without waiting: the handshake overlaps
   * whatever the run does first on the operator's machine. The lock waits
   * for the first command, so a site whose tasks stop before any has nothing
   * written on it. A failure is kept for the first command, never thrown here.
   */
  preconnect(): void {
    if (this.ready || this.early) return;
    this.early = this.handshake(this.closing.signal);
    // Reported by the first command; until then, not an unhandled rejection.
    this.early.catch(() => undefined);
  }

  /** Steps 1 to 4: the handshake preconnect() started, if any, else a new one; then the lock. */
  private async establish(signal: AbortSignal | undefined): Promise<void> {
    const early = this.early;
    if (early) {
      this.early = undefined;
      await early;
    } else {
      await this.handshake(signal);
    }
    const info = this.options.lock;
    if (!info) return;
    const result = await acquireLock(this.transport, info, { site: this.options.site, signal: this.options.signal, bus: this.options.bus, redactor: this.options.redactor });
    if (!result.acquired) throw new SiteLockedError(this.options.site ?? this.target, result.holder);
    this.lockHeld = true;
  }

  /** Steps 1 to 3: a slot, the handshake, and again after a transient refusal. */
  private async handshake(caller: AbortSignal | undefined): Promise<void> {
    const policy = this.options.retry ?? DEFAULT_CONNECT_RETRY;
    const own = this.options.signal;
    const signal = caller && own ? AbortSignal.any([own, caller]) : (caller ?? own);
    const interrupted = (): InterruptedError => new InterruptedError(`interrupted while connecting to ${this.target}`);
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw interrupted();
      try {
        // The signal reaches the handshake itself: Ctrl-C does not wait out ConnectTimeout.
        const once = (): Promise<void> => this.transport.connect(signal);
        await (this.options.handshakes ? this.options.handshakes.run(once, signal) : once());
        return;
      } catch (error) {
        if (!(error instanceof ConnectionError) || !error.transient) throw error;
        // Stopped while waiting for a slot: by the run (Ctrl-C) it is an interruption; by the command, its own account.
        if (own?.aborted) throw interrupted();
        if (signal?.aborted) throw error;
        if (attempt >= policy.attempts) throw gaveUp(error, attempt, started);
        const delayMs = backoffDelay(attempt, policy, this.options.random);
        if (policy.maxElapsedMs !== undefined && Date.now() - started + delayMs > policy.maxElapsedMs) throw gaveUp(error, attempt, started);
        this.options.onRetry?.({ error, attempt, attempts: policy.attempts, delayMs });
        try {
          await sleep(delayMs, undefined, { signal });
        } catch {
          throw interrupted();
        }
      }
    }
  }

  /** Step 6's second way: a new connection to the same site (slot, handshake, a few retries; no lock, no signal). */
  reopen(): SiteConnection {
    return new SiteConnection({ site: this.options.site, open: this.options.open, handshakes: this.options.handshakes, retry: RELEASE_RETRY });
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    await this.connect(options.signal);
    return this.transport.exec(command, options);
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    await this.connect();
    return this.transport.put(localPath, remotePath);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    await this.connect();
    return this.transport.get(remotePath, localPath);
  }

  close(): Promise<void> {
    this.closing.abort();
    return this.transport.close();
  }
}

/**
 * A transport whose connecting retries transient failures with backoff
 * (steps 2 and 3 alone), for `deploy unlock` and `deploy history` and tests.
 *
 * @example
 * const transport = retryingConnect(sshTransportFor(site, ssh), { onRetry: ({ error, delayMs }) => log(`${error.message}; retrying in ${delayMs} ms`) });
 */
export function retryingConnect(inner: Transport, options: RetryOptions = {}): SiteConnection {
  return new SiteConnection({ open: () => inner, retry: options.policy, signal: options.signal, random: options.random, onRetry: options.onRetry });
}

/** A transient failure retried until the policy ran out: the message says it was retried, how often and for how long. */
function gaveUp(error: ConnectionError, attempts: number, started: number): ConnectionError {
  if (attempts <= 1) return error;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  return new ConnectionError(`${error.message} (gave up after ${attempts} attempts in ${seconds} s)`, error.site, true, { cause: error, command: error.command });
}
