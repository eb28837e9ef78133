import { ConnectionError } from '../core/errors.ts';

/**
 * How many SSH handshakes may be under way at once in this process.
 * OpenSSH's default `MaxStartups 10:30:100` lets an sshd hold 10
 * connections that have not authenticated yet and then starts dropping new
 * ones at random (30% at 10, rising to 100% at 100). Fifty site users on
 * one server, all connecting at once, would lose some handshakes; 8 stays
 * under 10 with room for the operator's own ssh sessions. Only the
 * handshake is limited: once authenticated, a connection stays open and no
 * longer counts against MaxStartups.
 */
export const DEFAULT_MAX_HANDSHAKES = 8;

/**
 * A FIFO counting semaphore for connection handshakes, shared by every
 * site of a run (with ProxyJump all sites may go through one bastion
 * whatever their hosts). Each run has its own (ExecuteOptions.handshakes).
 * Hand-written rather than p-limit: a waiter must leave the queue at once on
 * Ctrl-C (its AbortSignal) with a ConnectionError naming the site, which
 * p-limit's queue does not offer.
 *
 * @example
 * const limiter = new HandshakeLimiter(8);
 * const connection = new SiteConnection({ open: () => sshTransportFor(site, settings), handshakes: limiter });
 * await connection.exec('uptime', {}); // connects first, at most 8 handshakes at once
 */
export class HandshakeLimiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** Most handshakes seen under way at once (for tests and diagnostics). */
  peak = 0;

  constructor(readonly size: number = DEFAULT_MAX_HANDSHAKES) {
    if (!(size >= 1)) throw new RangeError(`HandshakeLimiter size must be at least 1, got ${size}`);
  }

  /** Runs `fn` (a connect) once a slot is free; `signal` gives up waiting for one. */
  async run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (this.active >= this.size) {
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiting.indexOf(wake);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new ConnectionError('stopped while waiting for a free connection slot (command ended or interrupted)', null, true));
        };
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(wake);
      });
    }
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
