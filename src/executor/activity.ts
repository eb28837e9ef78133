/**
 * What of ours is under way on a transport (connecting, taking the lock,
 * commands, transfers), so the executor knows when a stopped site's tasks
 * are merely being ended (wait) and when they hang on something else
 * (let the site go), and never releases a lock while a command it started,
 * awaited or not, still runs on the site.
 */
import type { Transport } from '../transports/transport.ts';

/** A count of operations in flight, with a way to hear when it changes. */
export class Activity {
  private count = 0;
  private readonly listeners = new Set<() => void>();

  get busy(): boolean {
    return this.count > 0;
  }

  /** Calls `listener` whenever the count changes; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Counts `operation` while it is pending. */
  async track<T>(operation: () => Promise<T>): Promise<T> {
    this.change(+1);
    try {
      return await operation();
    } finally {
      this.change(-1);
    }
  }

  /** Resolves once nothing is in flight. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onChange(() => {
        if (this.busy) return;
        off();
        resolve();
      });
    });
  }

  private change(delta: number): void {
    this.count += delta;
    for (const listener of [...this.listeners]) listener();
  }
}

/**
 * `transport` with every operation counted in `activity`.
 *
 * @example const remote = tracked(connection.transport, siteActivity);
 */
export function tracked(transport: Transport, activity: Activity): Transport {
  return {
    get target() {
      return transport.target;
    },
    connect: () => activity.track(() => transport.connect()),
    exec: (command, options) => activity.track(() => transport.exec(command, options)),
    put: (localPath, remotePath) => activity.track(() => transport.put(localPath, remotePath)),
    get: (remotePath, localPath) => activity.track(() => transport.get(remotePath, localPath)),
    close: () => transport.close(),
  };
}

export interface LetGo {
  /** Aborted when the work should end: Ctrl-C, a signal, the deadline, an escaped error. */
  signal: AbortSignal;
  /** Activities whose operations the work may be waiting on. */
  activities: readonly Activity[];
  /** How long the work may take to finish once nothing is in flight. */
  graceMs: number;
  /** The error the work is given up with. */
  hung: () => Error;
}

/**
 * `work`'s outcome; or, once `signal` is aborted and none of `activities`
 * has anything in flight for `graceMs`, a rejection with `hung()`: a task
 * awaiting something that never settles must not hold the run (or its
 * locks) forever. While commands are still being ended it waits for them.
 */
export function settleOrLetGo<T>(work: Promise<T>, options: LetGo): Promise<T> {
  const { signal, activities, graceMs } = options;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const offs: (() => void)[] = [];
    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
      for (const off of offs) off();
      signal.removeEventListener('abort', check);
    };
    function check(): void {
      if (!signal.aborted) return;
      if (activities.some((a) => a.busy)) {
        if (timer) clearTimeout(timer);
        timer = undefined;
        return;
      }
      timer ??= setTimeout(() => {
        cleanup();
        reject(options.hung());
      }, graceMs);
    }
    work.then(
      (value) => {
        cleanup();
        resolve(value);
      },
      (error: unknown) => {
        cleanup();
        reject(error);
      },
    );
    for (const activity of activities) offs.push(activity.onChange(check));
    signal.addEventListener('abort', check);
    check();
  });
}
