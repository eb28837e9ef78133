import { ConnectionError } from '../core/errors.ts';
import type { ExecOptions, ExecResult, Transport } from '../transports/transport.ts';

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
 * site of a run (and by default by every run in the process: with
 * ProxyJump all sites may go through one bastion whatever their hosts).
 *
 * @example
 * const limiter = new HandshakeLimiter(8);
 * const transport = limiter.wrap(sshTransportFor(site, settings));
 * await transport.exec('uptime', {}); // connects first, at most 8 at once
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

  /**
   * The same transport, connecting under this limiter before its first
   * exec/put/get. After that, calls go straight through.
   */
  wrap(transport: Transport): Transport {
    return new LimitedTransport(transport, this);
  }
}

class LimitedTransport implements Transport {
  readonly target: string;
  private ready: Promise<void> | undefined;

  constructor(
    private readonly inner: Transport,
    private readonly limiter: HandshakeLimiter,
  ) {
    this.target = inner.target;
  }

  get usable(): boolean | undefined {
    return this.inner.usable;
  }

  private connected(signal?: AbortSignal): Promise<void> {
    this.ready ??= this.limiter.run(() => this.inner.connect(signal), signal).catch((error: unknown) => {
      // A failed connect may be tried again (the transport decides whether a refusal is final).
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  connect(signal?: AbortSignal): Promise<void> {
    return this.connected(signal);
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    await this.connected(options.signal);
    return this.inner.exec(command, options);
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    await this.connected();
    return this.inner.put(localPath, remotePath);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    await this.connected();
    return this.inner.get(remotePath, localPath);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The limiter runs share unless they bring their own. */
export const processHandshakes = new HandshakeLimiter(DEFAULT_MAX_HANDSHAKES);
