import { parseDuration } from '../core/duration.ts';
import { CommandError, ConnectionError, describeOutcome, InterruptedError } from '../core/errors.ts';
import { TailBuffer, type Result, type Where } from '../core/result.ts';
import type { ShellCommand } from '../core/quote.ts';
import { StreamRedactor } from '../core/secret.ts';
import type { RunOptions } from '../core/context.ts';
import type { Transport } from '../transports/transport.ts';
import type { SiteRuntime } from './site-runtime.ts';

/** How much of each stream a Result keeps; the rest still streams to views. */
export const DEFAULT_OUTPUT_LIMIT = 1024 * 1024;

export interface CommandRequest {
  where: Where;
  transport: Transport;
  /** As the author wrote it (shown in views and errors). */
  command: ShellCommand;
  /** What the shell receives. */
  composed: ShellCommand;
  cwd: string | undefined;
  taskId: string | null;
  options: RunOptions;
  /**
   * A check the tool makes for itself (the sudo probe): no command events and
   * no output in the views, and its failure is an answer, not a failed command.
   */
  internal?: boolean;
  /** The tool's own POSIX sh script (see ExecOptions.ownScript): it need not start the user's shell. */
  ownScript?: boolean;
}

/**
 * Run one command: emit its events, keep bounded output, enforce its timeout,
 * and on failure (unless warn-only) let the prompter decide: retry, skip, abort.
 */
export async function runCommand(rt: SiteRuntime, request: CommandRequest): Promise<Result> {
  rt.redactor.add(...request.command.secrets, ...request.composed.secrets);
  for (;;) {
    const result = await runOnce(rt, request);
    if (result.ok || request.options.warn) return result;
    const error = new CommandError(result);
    if (rt.signal.aborted) throw new InterruptedError(`interrupted during: ${result.command}`, result.command);
    const { answer, by } = await rt.prompter.onFailure({ site: rt.siteName, error });
    rt.bus.emit({ type: 'prompt', site: rt.siteName, kind: 'failure', question: error.shortMessage, answer, by });
    if (answer === 'retry') continue;
    if (answer === 'skip') {
      // The site may still end ok: its summary row says what it went on past.
      rt.skippedFailure?.(`${rt.redactor.redact(error.command)} (${describeOutcome(error.result)})`);
      return result;
    }
    throw error;
  }
}

async function runOnce(rt: SiteRuntime, request: CommandRequest): Promise<Result> {
  // No transport can send a NUL byte (a C string ends there): refused before connecting, not "lost" after.
  if (request.composed.text.includes('\0')) throw new TypeError(`refusing to run a command that contains a NUL byte (no shell or SSH server can take one), nothing was sent: ${rt.redactor.redact(request.command.shown).replaceAll('\0', '\\0')}`);
  if (rt.signal.aborted) throw new InterruptedError(`interrupted before: ${rt.redactor.redact(request.command.shown)}`);
  // Connecting (and taking the site's lock) comes before the command is announced:
  // a site that cannot be reached or is locked has not started this command.
  await request.transport.connect();
  if (rt.signal.aborted) throw new InterruptedError(`interrupted before: ${rt.redactor.redact(request.command.shown)}`);
  const commandId = rt.bus.nextCommandId();
  // `shown` has each interpolated secret as *** whatever its length or quoting;
  // the redactor then catches known secrets written into the text by hand.
  const command = rt.redactor.redact(request.options.label ?? request.command.shown);
  const composed = rt.redactor.redact(request.composed.shown);
  const site = rt.siteName;
  const emit: typeof rt.bus.emit = (event) => {
    if (!request.internal) rt.bus.emit(event);
  };
  emit({ type: 'command:start', site, taskId: request.taskId, commandId, command, composed, where: request.where });

  const limit = rt.outputLimit ?? DEFAULT_OUTPUT_LIMIT;
  const stdout = new TailBuffer(limit);
  const stderr = new TailBuffer(limit);
  const redactors = { stdout: new StreamRedactor(rt.redactor), stderr: new StreamRedactor(rt.redactor) };
  const show = (name: 'stdout' | 'stderr', text: string): void => {
    if (text !== '' && !request.options.quiet) emit({ type: 'output', site, commandId, stream: name, chunk: text });
  };
  const stream = (name: 'stdout' | 'stderr', buffer: TailBuffer) => (chunk: string) => {
    buffer.push(chunk);
    show(name, redactors[name].push(chunk));
  };
  // Whatever the redactors still hold belongs before command:end.
  const flushOutput = (): void => {
    show('stdout', redactors.stdout.flush());
    show('stderr', redactors.stderr.flush());
  };

  const timeoutMs = request.options.timeout !== undefined ? parseDuration(request.options.timeout) : rt.defaultTimeoutMs;
  const controller = new AbortController();
  let timedOut = false;
  const timer =
    timeoutMs && timeoutMs > 0
      ? setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs)
      : undefined;
  const onInterrupt = (): void => controller.abort();
  rt.signal.addEventListener('abort', onInterrupt, { once: true });

  const started = performance.now();
  try {
    const exec = await request.transport.exec(request.composed.text, {
      onStdout: stream('stdout', stdout),
      onStderr: stream('stderr', stderr),
      // Secret environment values (composed.input) first: the line reads them before the command runs.
      stdin: request.composed.input !== '' ? request.composed.input + (request.options.stdin ?? '') : request.options.stdin,
      signal: controller.signal,
      ownScript: request.ownScript,
    });
    const durationMs = Math.round(performance.now() - started);
    const ok = exec.exitCode === 0 && !timedOut;
    flushOutput();
    if (exec.unconfirmed) rt.bus.emit({ type: 'log', site, level: 'warn', message: exec.unconfirmed });
    emit({ type: 'command:end', site, commandId, exitCode: exec.exitCode, signal: exec.signal, timedOut, ok, durationMs });
    return {
      command,
      composed,
      site,
      target: rt.targetFor(request.where),
      where: request.where,
      cwd: request.cwd,
      stdout: rt.redactor.redact(stdout.toString()),
      stderr: rt.redactor.redact(stderr.toString()),
      exitCode: exec.exitCode,
      signal: exec.signal,
      timedOut,
      durationMs,
      ok,
      failed: !ok,
    };
  } catch (error) {
    const durationMs = Math.round(performance.now() - started);
    flushOutput();
    emit({ type: 'command:end', site, commandId, exitCode: null, signal: null, timedOut: false, ok: false, durationMs });
    throw lostDuring(error, command, rt.targetFor(request.where), site);
  } finally {
    if (timer) clearTimeout(timer);
    rt.signal.removeEventListener('abort', onInterrupt);
  }
}

/**
 * A connection lost while a command ran, named by the command as the author
 * wrote it (not the composed line), so the summary reads
 * "connection to alleged@web1:22 lost during: git pull --ff-only".
 * The command is not re-run: whether it finished on the server is unknown.
 */
function lostDuring(error: unknown, command: string, target: string, site: string | null): unknown {
  if (!(error instanceof ConnectionError) || error.command !== undefined || !/ lost during: /.test(error.message)) return error;
  const why = /\(([^()]*)\)$/.exec(error.message)?.[1];
  return new ConnectionError(`connection to ${target} lost during: ${command}${why ? ` (${why})` : ''}; it was not run again, and may still be running on the server`, site, false, {
    cause: error,
    command,
  });
}
