/**
 * Errors that escape a task: a `c.run(...)` nobody awaited that fails, a
 * throw inside a timer callback, a rejected promise left alone. Node would
 * end the whole process for them (every site, no summary, locks left).
 * Instead the executor runs each site's tasks (and each run-once task) in
 * an AsyncLocalStorage scope, and the CLI's `unhandledRejection` and
 * `uncaughtException` handlers hand what escaped to {@link Escapes.contain}:
 * the site whose code it came from fails with a message naming the task,
 * the others go on.
 *
 * Hand-written because no library attributes an escaped error to the code
 * that caused it; AsyncLocalStorage does, since Node runs both handlers in
 * the async context of the failed promise or callback.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { CommandError, ConnectionError, InterruptedError } from '../core/errors.ts';

/** Where an escaped error lands: the site (null: the run-once lane) and the innermost task. */
export interface EscapeScope {
  readonly site: string | null;
  readonly task: string;
  /** Fails the site (or the run-once task) with `error`. */
  fail(error: EscapedError): void;
}

/** A site's failure caused by an error no task code caught. */
export class EscapedError extends Error {
  override readonly name = 'EscapedError';
  constructor(
    message: string,
    readonly site: string | null,
    readonly task: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
  }
}

/**
 * What the site's summary says: `a command was started without await in
 * task migrate: Command failed with exit code 1 on ...` for a command's
 * error, else `an error escaped task migrate (...): <message>`.
 */
export function describeEscape(reason: unknown, task: string): string {
  if (reason instanceof CommandError) {
    return `a command was started without await in task ${task} (await every c.run, c.local and c.sudo): ${reason.shortMessage}`;
  }
  if ((reason instanceof InterruptedError || reason instanceof ConnectionError) && reason.command !== undefined) {
    return `a command was started without await in task ${task} (await every c.run, c.local and c.sudo): ${reason.message}`;
  }
  const text = reason instanceof Error ? reason.message : String(reason);
  return `an error escaped task ${task} (thrown in a callback, or a promise nobody awaited): ${text}`;
}

/** One run's scopes; see the module comment. */
export class Escapes {
  private readonly storage = new AsyncLocalStorage<EscapeScope>();
  /** How many escaped errors were contained. */
  seen = 0;

  /** Runs `fn` (and everything it starts, timers and promises included) in `scope`. */
  run<T>(scope: EscapeScope, fn: () => T): T {
    return this.storage.run(scope, fn);
  }

  /**
   * For `process.on('unhandledRejection' | 'uncaughtException')`: fails the
   * site whose task let `reason` escape, and returns true; false when it
   * came from outside every task (the caller decides what that means).
   */
  contain(reason: unknown): boolean {
    const scope = this.storage.getStore();
    if (!scope) return false;
    this.seen++;
    scope.fail(new EscapedError(describeEscape(reason, scope.task), scope.site, scope.task, { cause: reason }));
    return true;
  }
}
