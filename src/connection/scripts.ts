/**
 * The tool's own short scripts on a site (the deploy lock, the history),
 * run through the runner like any command: the run's signal and a timeout
 * end them, secrets are redacted, and a connection lost during one is
 * reported as such. They are internal: views show no command events and no
 * output for them.
 */
import { InterruptedError } from '../core/errors.ts';
import { EventBus } from '../core/events.ts';
import { shellCommand } from '../core/quote.ts';
import { Redactor } from '../core/secret.ts';
import type { Prompter } from '../core/prompter.ts';
import { runCommand } from '../runner/run-command.ts';
import type { SiteRuntime } from '../runner/site-runtime.ts';
import type { Transport } from '../transports/transport.ts';

export interface ScriptOptions {
  /** What the script does, for errors: `take the deploy lock`. */
  label: string;
  stdin?: string;
  /** Ctrl-C: the script is ended and an InterruptedError thrown. */
  signal?: AbortSignal;
  /** The script is ended after this long (a server that stopped answering). */
  timeoutMs?: number;
  /** Where a warning about a script that could not be stopped goes; default nowhere. */
  bus?: EventBus;
  redactor?: Redactor;
  site?: string | null;
}

export interface ScriptResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Never asked: scripts run warn-only, so a failure is a result, not a question. */
const NO_QUESTIONS: Prompter = {
  confirm: () => Promise.reject(new Error('internal scripts ask no questions')),
  onFailure: () => Promise.reject(new Error('internal scripts ask no questions')),
};

/**
 * Run one of the tool's scripts on `transport` through the runner.
 * Resolves with its exit code and output (a non-zero exit is a result);
 * throws InterruptedError when `signal` ended it.
 *
 * @example const { exitCode, stdout } = await runScript(transport, 'cat ~/.deployfile/lock/info.json', { label: 'read the deploy lock' });
 */
export async function runScript(transport: Transport, script: string, options: ScriptOptions): Promise<ScriptResult> {
  const signal = options.signal ?? new AbortController().signal;
  const rt: SiteRuntime = {
    site: null,
    siteName: options.site ?? null,
    remote: transport,
    local: transport,
    bus: options.bus ?? new EventBus('internal-script'),
    redactor: options.redactor ?? new Redactor(),
    prompter: NO_QUESTIONS,
    shared: new Map(),
    dryRun: false,
    signal,
    invoke: () => Promise.reject(new Error('internal scripts run no tasks')),
    runOnce: () => Promise.reject(new Error('internal scripts run no tasks')),
    report: () => undefined,
    targetFor: () => transport.target,
  };
  const command = shellCommand(script);
  try {
    const result = await runCommand(rt, {
      where: 'remote',
      transport,
      command,
      composed: command,
      cwd: undefined,
      taskId: null,
      options: { warn: true, quiet: true, label: options.label, stdin: options.stdin, timeout: options.timeoutMs },
      internal: true,
      ownScript: true,
    });
    if (signal.aborted) throw new InterruptedError(`interrupted during: ${options.label} on ${transport.target}`, options.label);
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr, timedOut: result.timedOut };
  } catch (error) {
    if (signal.aborted && !(error instanceof InterruptedError)) throw new InterruptedError(`interrupted during: ${options.label} on ${transport.target}`, options.label);
    throw error;
  }
}
