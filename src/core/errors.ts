import { tailLines, type Result } from './result.ts';

/** Exit codes, documented in `deploy --help` and the README. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  interrupted: 130,
} as const;

export function describeOutcome(result: Result): string {
  if (result.timedOut) return 'timed out';
  if (result.signal) return `was killed by signal ${result.signal}`;
  if (result.exitCode === null) return 'ended without an exit status';
  return `failed with exit code ${result.exitCode}`;
}

/**
 * Thrown when a command fails and the call was not warn-only. It has every
 * field of the Result, and its message alone says where, what and why.
 *
 * @example
 * // Command failed with exit code 1 on alleged (alleged@web1) in ~/Sites/alleged: git pull --ff-only
 * //   fatal: Not possible to fast-forward, aborting.
 */
export class CommandError extends Error implements Result {
  override readonly name = 'CommandError';
  readonly command: string;
  readonly composed: string;
  readonly site: string | null;
  readonly target: string;
  readonly where: Result['where'];
  readonly cwd: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly ok = false;
  readonly failed = true;
  /** One line: outcome, site, target, directory, command. */
  readonly shortMessage: string;
  readonly result: Result;

  constructor(result: Result, options: { cause?: unknown } = {}) {
    const where = result.where === 'local' ? `locally${result.site ? ` (for site ${result.site})` : ''}` : `on ${result.site} (${result.target})`;
    const dir = result.cwd ? ` in ${result.cwd}` : '';
    const short = `Command ${describeOutcome(result)} ${where}${dir}: ${result.command}`;
    const tail = tailLines(result.stderr || result.stdout, 10);
    super(tail.length > 0 ? `${short}\n${tail.map((line) => `  ${line}`).join('\n')}` : short, options);
    this.shortMessage = short;
    this.result = result;
    this.command = result.command;
    this.composed = result.composed;
    this.site = result.site;
    this.target = result.target;
    this.where = result.where;
    this.cwd = result.cwd;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
    this.exitCode = result.exitCode;
    this.signal = result.signal;
    this.timedOut = result.timedOut;
    this.durationMs = result.durationMs;
  }
}

/** `c.abort(message)`: the author stops the run on purpose (exit 1). */
export class AbortError extends Error {
  override readonly name = 'AbortError';
}

/** A broken deployfile: names the file and the problem (exit 2). */
export class DeployfileError extends Error {
  override readonly name = 'DeployfileError';
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(message);
  }
}

/** Bad command-line input: unknown task, unknown site, bad flag (exit 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * The SSH connection could not be made or was lost: says which site and
 * what to do. `transient` failures may be retried; auth and host keys never.
 */
export class ConnectionError extends Error {
  override readonly name = 'ConnectionError';
  /** The command that was running when the connection was lost, as the author wrote it. */
  readonly command: string | undefined;
  constructor(
    message: string,
    readonly site: string | null,
    readonly transient = false,
    options: { cause?: unknown; command?: string } = {},
  ) {
    super(message, options);
    this.command = options.command;
  }
}

/** Stopped by Ctrl-C (exit 130). `command`: the one that was running and was ended. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError';
  constructor(
    message = 'interrupted',
    readonly command?: string,
  ) {
    super(message);
  }
}
