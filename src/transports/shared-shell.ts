import { randomBytes } from 'node:crypto';
import { quote } from '../core/quote.ts';
import type { ExecOptions, ExecResult } from './transport.ts';

/**
 * One long-lived `/bin/sh` per connection that runs the site's commands one
 * after another, fed on its stdin, instead of a new SSH session for each.
 *
 * Why: every session costs the server a session process of sshd, a login
 * shell and a channel's round trips: about 11 ms of server CPU per `true`
 * on the bench's lab, against 4.5 ms through this shell (a fork and exec of
 * the user's shell). With 50 sites x 50 commands that is most of the run.
 *
 * What a command sees stays what a session gives it: it runs as
 * `"$SHELL" -c '<line>'` (the user's shell, as sshd starts it), with the
 * session's environment, from the login directory, in a process of its own,
 * so nothing it sets or `cd`s carries over; without stdin of its own it
 * reads end of file, never the lines meant for the shell. Its end
 * is told by a line with a random token on each stream; output is passed on
 * as it comes, except for the few bytes that might be the start of that line.
 *
 * A command's stdin, if any (the lock's record, a sudo password), reaches it
 * through a pipe from `printf`, a builtin. A command whose stdin does not fit
 * ({@link fitsShellLine}) gets a session of its own, as does one asked for
 * while the shell is busy.
 *
 * The tool's own scripts (the lock, the history: `ownScript`) are POSIX sh
 * written for any `/bin/sh`, so they run in a subshell of this shell
 * instead: a fork, without starting the user's shell (on the bench's lab a
 * `bash -c true` costs the server about 5.5 ms, a subshell of dash 1.5 ms).
 */

/** The most stdin a command run in the shared shell takes (it travels inside the shell's line). */
export const SHELL_STDIN_LIMIT = 64 * 1024;

/**
 * Whether a command's stdin can travel inside the shell's line: small, and
 * without a NUL byte (no shell can hold one in a string; a session's stdin
 * carries any byte).
 */
export function fitsShellLine(stdin: string | undefined): boolean {
  return stdin === undefined || (stdin.length <= SHELL_STDIN_LIMIT && !stdin.includes('\0'));
}

/** What {@link SharedShell.run} gives when the command never started: run it in a session instead. */
export const NOT_STARTED = Symbol('not started');

/** The shell's channel, as the SSH transport opens it. */
export interface ShellChannel {
  /** Writes to the shell's stdin (lines to run). Buffered until the channel is open. */
  write(text: string): void;
  /** Ends the shell and whatever it runs (TERM, then KILL, as for a command that times out). */
  stop(): void;
  /** Closes the shell's stdin: it exits once its command is done. */
  end(): void;
  /**
   * Settles when the channel is gone: resolves after it exited or was
   * stopped, with its own end; rejects when the server refused it
   * (`refused` true) or the connection was lost.
   */
  readonly ended: Promise<ExecResult>;
}

/** Why a shell's channel ended without an exit: a refused request, or a lost connection. */
export class ShellChannelError extends Error {
  constructor(
    message: string,
    readonly refused: boolean,
  ) {
    super(message);
  }
}

interface Running {
  command: string;
  token: string;
  options: ExecOptions;
  acked: boolean;
  outDone: boolean;
  errDone: boolean;
  exitCode: number | null;
  signal: string | null;
  aborted: boolean;
  resolve(result: ExecResult | typeof NOT_STARTED): void;
  reject(error: unknown): void;
  onAbort(): void;
}

/**
 * The shell's first line. A TERM (a timeout, Ctrl-C: sshd signals the whole
 * process group) must end the command, not the shell under it: a shell gone
 * first is an exit the session reports, after which a command that ignores
 * TERM would never get its KILL. Caught, not ignored, so commands start with
 * TERM at its default.
 */
export const SHELL_SETUP = 'trap : TERM\n';

/**
 * The line the shell reads for one command: say it started (stderr), run
 * it, then end each stream with the token, then on stdout the exit status
 * and, for a status above 128, the signal's name (`kill -l`, as the
 * server's own shell names it). The token is found wherever it lands, so
 * output without a final newline stays as it was.
 */
export function shellLine(command: string, token: string, stdin = '', ownScript = false): string {
  // A subshell keeps what the script sets from this shell; eval keeps a syntax error in it from ending this shell.
  const program = ownScript ? `( eval ${quote(command)} )` : `"\${SHELL:-/bin/sh}" -c ${quote(command)}`;
  // stdin goes in through a pipe from printf, a builtin: no file, no argument list another user could read.
  const run = stdin === '' ? `${program} </dev/null` : `printf '%s' ${quote(stdin)} | ${program}`;
  return (
    `printf '%s\\n' '${token}+' >&2; ${run}; _df_s=$?; _df_n=; ` +
    `if [ "$_df_s" -gt 128 ]; then _df_n=$(kill -l "$_df_s" 2>/dev/null) || _df_n=; fi; ` +
    `printf '%s %s %s\\n' '${token}' "$_df_s" "$_df_n"; printf '%s\\n' '${token}' >&2\n`
  );
}

/**
 * Passes on what `text` holds before `end`, or, while `end` has not come,
 * all but the characters that could be its start. `rest` is what was not
 * passed on: from `end` on when `found`, else the held-back start.
 */
function passOn(text: string, end: string, emit: ((chunk: string) => void) | undefined): { rest: string; found: boolean } {
  const at = text.indexOf(end);
  const upTo = at >= 0 ? at : text.length - heldBack(text, end);
  if (upTo > 0) emit?.(text.slice(0, upTo));
  return { rest: text.slice(upTo), found: at >= 0 };
}

/** How many characters at the end of `text` could be the start of `token`. */
export function heldBack(text: string, token: string): number {
  for (let n = Math.min(text.length, token.length - 1); n > 0; n--) {
    if (text.endsWith(token.slice(0, n))) return n;
  }
  return 0;
}

export class SharedShell {
  private readonly nonce = `deployfile-${randomBytes(8).toString('hex')}`;
  private count = 0;
  private running: Running | undefined;
  private out = '';
  private err = '';
  private dead = false;
  /** Whether any command got as far as starting: a shell that never did is no use on this server. */
  worked = false;
  private readonly channel: ShellChannel;

  /**
   * @param open opens the channel; output goes to the two handlers.
   * @param lost the error for a command whose connection was lost while it ran.
   */
  constructor(
    open: (onStdout: (chunk: string) => void, onStderr: (chunk: string) => void) => ShellChannel,
    private readonly lost: (command: string, error: unknown) => Error,
  ) {
    this.channel = open(
      (chunk) => this.stdout(chunk),
      (chunk) => this.stderr(chunk),
    );
    this.channel.write(SHELL_SETUP);
    this.channel.ended.then(
      (result) => this.ended(result, undefined),
      (error: unknown) => this.ended(undefined, error),
    );
  }

  /** Free for a command: alive and not running one. */
  get idle(): boolean {
    return !this.dead && this.running === undefined;
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Runs one command; {@link NOT_STARTED} when the shell ended before it began (nothing of it ran). */
  run(command: string, options: ExecOptions): Promise<ExecResult | typeof NOT_STARTED> {
    if (!this.idle) throw new Error('the shared shell is busy');
    if (options.signal?.aborted) return Promise.resolve(NOT_STARTED);
    const token = `${this.nonce}-${++this.count}`;
    return new Promise((resolve, reject) => {
      const running: Running = {
        command,
        token,
        options,
        acked: false,
        outDone: false,
        errDone: false,
        exitCode: null,
        signal: null,
        aborted: false,
        resolve,
        reject,
        onAbort: () => {
          // A timeout or Ctrl-C ends the whole shell (its process group holds the
          // command), the way a session's command is ended; the next command gets a new one.
          running.aborted = true;
          this.dead = true;
          this.channel.stop();
        },
      };
      this.running = running;
      options.signal?.addEventListener('abort', running.onAbort, { once: true });
      this.channel.write(shellLine(command, token, options.stdin, options.ownScript));
    });
  }

  private settle(running: Running, how: () => void): void {
    if (this.running !== running) return;
    this.running = undefined;
    running.options.signal?.removeEventListener('abort', running.onAbort);
    // A shell stopped for this command ran it to its end: let it exit now rather than be killed later.
    if (this.dead) this.channel.end();
    how();
  }

  private stdout(chunk: string): void {
    const running = this.running;
    // Output with no command running is a background process's left over from an earlier one: not this command's.
    if (!running || running.outDone) return;
    const end = `${running.token} `;
    const { rest, found } = passOn(this.out + chunk, end, running.options.onStdout);
    const eol = rest.indexOf('\n');
    this.out = rest;
    if (!found || eol < 0) return;
    const [status = '', name = ''] = rest.slice(end.length, eol).split(' ');
    this.out = '';
    const code = Number(status);
    // Above 128 with a signal's name: killed by that signal (a shell cannot tell `exit 143` apart; sshd's report cannot either once a shell is between).
    if (code > 128 && name !== '') running.signal = name.replace(/^SIG/, '');
    else running.exitCode = Number.isInteger(code) ? code : null;
    running.outDone = true;
    this.finishIfDone(running);
  }

  private stderr(chunk: string): void {
    const running = this.running;
    if (!running || running.errDone) return;
    this.err += chunk;
    if (!running.acked) {
      const ack = `${running.token}+\n`;
      const at = this.err.indexOf(ack);
      if (at < 0) return;
      // Anything before the command said it started is not the command's.
      this.err = this.err.slice(at + ack.length);
      running.acked = true;
      this.worked = true;
    }
    const { rest, found } = passOn(this.err, `${running.token}\n`, running.options.onStderr);
    this.err = found ? '' : rest;
    if (!found) return;
    running.errDone = true;
    this.finishIfDone(running);
  }

  private finishIfDone(running: Running): void {
    if (!running.outDone || !running.errDone) return;
    this.settle(running, () => running.resolve({ exitCode: running.exitCode, signal: running.signal }));
  }

  private ended(result: ExecResult | undefined, error: unknown): void {
    this.dead = true;
    const running = this.running;
    if (!running) return;
    // What was held back in case it began an end line is the command's output after all.
    if (!running.outDone && this.out !== '') running.options.onStdout?.(this.out);
    if (running.acked && !running.errDone && this.err !== '') running.options.onStderr?.(this.err);
    this.out = this.err = '';
    // Only a shell that ended on its own (or was refused) before saying the
    // command started is known not to have run it. A lost connection leaves
    // that unknown, as for a session whose exec request was in flight.
    const refused = error instanceof ShellChannelError && error.refused;
    if (!running.acked && !running.aborted && (result !== undefined || refused)) {
      this.settle(running, () => running.resolve(NOT_STARTED));
      return;
    }
    if (result !== undefined) {
      // Stopped (timeout, Ctrl-C) or died with the command in it: the shell's own end is the command's.
      this.settle(running, () => running.resolve(result));
      return;
    }
    this.settle(running, () => running.reject(this.lost(running.command, error)));
  }
}
