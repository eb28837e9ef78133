import { EventBus } from '../../src/core/events.ts';
import type { SiteInfo } from '../../src/core/context.ts';
import { Redactor } from '../../src/core/secret.ts';
import type { SiteRuntime, TaskFrameRef } from '../../src/runner/site-runtime.ts';
import { TaskContext } from '../../src/runner/task-context.ts';
import type { ExecOptions, ExecResult, Transport } from '../../src/transports/transport.ts';

/**
 * Task tests run on the engine's own `TaskContext` and runner (compose, sudo
 * probe, failure prompt, redaction, events), over a scripted transport: only
 * the far side of the wire is fake. So a task test cannot pass on a context
 * that behaves differently from the one `deploy run` gives tasks.
 */

/** One command that reached a transport, as the shell there would receive it. */
export interface RecordedCommand {
  /** `sudo` for a remote line that `c.sudo` wrapped. */
  where: 'remote' | 'local' | 'sudo';
  /** The exact shell line, with exports, cd and prefixes. */
  line: string;
  /** What the views show for it: its label if it has one, else the command as the task wrote it (secrets as ***). */
  shown: string;
  /** A check the tool makes for itself (the sudo probe): no events, not shown. */
  internal: boolean;
  /** What the command got on stdin (undefined: nothing). */
  stdin: string | undefined;
  /** Its output as the views showed it, both streams; empty for a quiet command. */
  output: string;
  /** How long it had to run before the runner ended it (its timeout), if it hung until then. */
  endedAfterMs?: number;
}

/** How a scripted command ends; anything left out is a success with no output. */
export interface Scripted {
  stdout?: string;
  stderr?: string;
  exitCode?: number | null;
  signal?: string | null;
  /** Never ends by itself: runs until the runner ends it (timeout, Ctrl-C), then reports TERM. */
  hang?: boolean;
}

/** Matches a command by its shell line: a substring, a regexp or a predicate. */
export type Matcher = string | RegExp | ((command: RecordedCommand) => boolean);

interface Rule {
  match: Matcher;
  result: Scripted | ((command: RecordedCommand) => Scripted);
  times: number;
}

export interface ScriptedOptions {
  /** The site (default `alleged` on web1.example.com:22), or null for the run-once lane. */
  site?: Partial<SiteInfo> | null;
  /** Both transports answer like `DryRunTransport`: every command succeeds with no output, scripts are ignored. */
  dryRun?: boolean;
  shared?: Map<string, unknown>;
  /** Answers to confirm(), in order; when they run out the question's default (or no) is used. */
  answers?: boolean[];
  /**
   * What the user answers when a command fails outside warn-only, as the
   * engine's failure prompt asks: abort throws the CommandError (default),
   * skip hands the failed result back to the task.
   */
  onFailure?: 'abort' | 'skip';
  /** The sudo password the run knows (asked or from the environment); with it, c.sudo probes `sudo -k -n true` first. */
  sudoPassword?: string;
  /** Another site of the same run: share its recorder (and pass its `shared`), as sites share the executor's run-once work. */
  recorder?: Recorder;
}

/** Everything the site's runtime saw, shared by the contexts derived from it and its run-once lane. */
export class Recorder {
  readonly commands: RecordedCommand[] = [];
  /** `info` log lines, as the views get them (redacted). */
  readonly logs: string[] = [];
  readonly warnings: string[] = [];
  readonly skips: string[] = [];
  readonly questions: string[] = [];
  readonly invoked: string[] = [];
  /** c.report notes, in order. */
  readonly reports: string[] = [];
  /** c.check verdicts, as their `check` events carry them. */
  readonly checks: { name: string; status: string; detail: string; fix?: string }[] = [];
  /** put and get, in order: `put <local> <remote>`, `get <remote> <local>`. */
  readonly transfers: string[] = [];
  readonly rules: Rule[] = [];
  readonly answers: boolean[];
  /** c.runOnce work by key, as the executor keeps it: one run per key. */
  readonly once = new Map<string, Promise<unknown>>();

  constructor(answers: boolean[] = []) {
    this.answers = [...answers];
  }

  /** The shell lines sent so far (the tool's own probes included). */
  get lines(): string[] {
    return this.commands.map((c) => c.line);
  }
}

function matches(match: Matcher, command: RecordedCommand): boolean {
  if (typeof match === 'string') return command.line.includes(match);
  if (match instanceof RegExp) return match.test(command.line);
  return match(command);
}

/**
 * The far side of the wire: records each line and answers from the
 * recorder's script. `shownNext` is what the runner announced for the line
 * (its `command:start` event comes right before `exec`); a line with no
 * announcement is one of the tool's internal checks.
 */
export class ScriptedTransport implements Transport {
  shownNext: RecordedCommand | undefined;

  constructor(
    readonly target: string,
    private readonly side: 'remote' | 'local',
    private readonly recorder: Recorder,
    private readonly dryRun: boolean,
  ) {}

  async connect(): Promise<void> {}

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const announced = this.shownNext;
    this.shownNext = undefined;
    const where: RecordedCommand['where'] = this.side === 'remote' && command.startsWith('sudo ') ? 'sudo' : this.side;
    const recorded: RecordedCommand = Object.assign(announced ?? { shown: command, output: '' }, { where, line: command, internal: announced === undefined, stdin: options.stdin });
    this.recorder.commands.push(recorded);
    if (this.dryRun) return { exitCode: 0, signal: null };
    const rule = this.recorder.rules.find((r) => r.times > 0 && matches(r.match, recorded));
    if (rule) rule.times -= 1;
    const scripted = rule ? (typeof rule.result === 'function' ? rule.result(recorded) : rule.result) : {};
    if (scripted.stdout) options.onStdout?.(scripted.stdout);
    if (scripted.stderr) options.onStderr?.(scripted.stderr);
    if (scripted.hang) {
      const started = performance.now();
      await new Promise<void>((resolve) => (options.signal?.aborted ? resolve() : options.signal?.addEventListener('abort', () => resolve(), { once: true })));
      recorded.endedAfterMs = performance.now() - started;
      return { exitCode: null, signal: 'TERM' };
    }
    return { exitCode: scripted.exitCode === undefined ? 0 : scripted.exitCode, signal: scripted.signal ?? null };
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    this.recorder.transfers.push(`put ${localPath} ${remotePath}`);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    this.recorder.transfers.push(`get ${remotePath} ${localPath}`);
  }

  async close(): Promise<void> {}
}

/** A skip is written on the task's frame; the recorder keeps each reason. */
function recordingFrame(task: string, recorder: Recorder): TaskFrameRef {
  let skipped: string | undefined;
  return {
    taskId: 't1',
    task,
    get skipped() {
      return skipped;
    },
    set skipped(reason: string | undefined) {
      skipped = reason;
      if (reason !== undefined) recorder.skips.push(reason);
    },
  };
}

/**
 * The SiteRuntime the executor would build for one site (or the run-once
 * lane), built here by hand as `makeRuntime` in src/executor/executor.ts does,
 * with the executor's own jobs (invoke, runOnce, report) recorded instead.
 */
function scriptedRuntime(options: ScriptedOptions, recorder: Recorder, shared: Map<string, unknown>, site: SiteInfo | null): SiteRuntime {
  const dryRun = options.dryRun ?? false;
  const remote = site ? new ScriptedTransport(`${site.user}@${site.host}:${site.port}`, 'remote', recorder, dryRun) : null;
  const local = new ScriptedTransport('local', 'local', recorder, dryRun);
  const bus = new EventBus('test-run');
  // command:start comes right before the transport's exec; output events are what the views show of it.
  const byId = new Map<string, RecordedCommand>();
  bus.on((event) => {
    if (event.type === 'command:start') {
      const announced = { where: event.where, line: '', shown: event.command, internal: false, stdin: undefined, output: '' } satisfies RecordedCommand;
      byId.set(event.commandId, announced);
      (event.where === 'local' ? local : (remote ?? local)).shownNext = announced;
    }
    if (event.type === 'output') {
      const command = byId.get(event.commandId);
      if (command) command.output += event.chunk;
    }
    if (event.type === 'log') (event.level === 'warn' ? recorder.warnings : recorder.logs).push(event.message);
    if (event.type === 'check') recorder.checks.push({ name: event.name, status: event.status, detail: event.detail, ...(event.fix ? { fix: event.fix } : {}) });
  });
  const rt: SiteRuntime = {
    site,
    siteName: site?.name ?? null,
    remote,
    local,
    bus,
    redactor: new Redactor(),
    prompter: {
      confirm: async ({ question, default: fallback }) => {
        recorder.questions.push(question);
        return { answer: recorder.answers.length > 0 ? (recorder.answers.shift() as boolean) : (fallback ?? false), by: 'user' };
      },
      onFailure: async () => ({ answer: options.onFailure === 'skip' ? 'skip' : 'abort', by: 'user' }),
    },
    shared,
    dryRun,
    signal: new AbortController().signal,
    sudoPassword: options.sudoPassword === undefined ? undefined : async () => options.sudoPassword,
    invoke: async (task) => {
      recorder.invoked.push(task);
    },
    runOnce: <T>(key: string, label: string, fn: (lane: SiteRuntime, frame: TaskFrameRef) => Promise<T>): Promise<T> => {
      let pending = recorder.once.get(key) as Promise<T> | undefined;
      if (!pending) {
        pending = fn(scriptedRuntime(options, recorder, shared, null), recordingFrame(label, recorder));
        recorder.once.set(key, pending);
      }
      return pending;
    },
    report: (note) => {
      recorder.reports.push(note);
    },
    targetFor: (where) => (where === 'local' || !remote ? 'local' : remote.target),
  };
  return rt;
}

/**
 * The real TaskContext for one site (or the run-once lane), with its
 * recorder and a way to script the server's answers.
 *
 * @example
 * const c = scriptedContext();
 * c.script('git rev-parse HEAD', { stdout: 'abc\n' });
 * await pull().run(c);
 * expect(c.recorder.lines[0]).toBe('cd /home/alleged/Sites/alleged && git fetch --quiet');
 */
export class ScriptedContext extends TaskContext {
  constructor(
    readonly recorder: Recorder,
    runtime: SiteRuntime,
  ) {
    super(runtime, recordingFrame('test', recorder));
  }

  /** Answer commands whose line matches with `result` (the first `times` of them; default every one). */
  script(match: Matcher, result: Scripted | ((command: RecordedCommand) => Scripted), times = Infinity): this {
    this.recorder.rules.push({ match, result, times });
    return this;
  }
}

/** A task context for one site (default `alleged`), or for the run-once lane with `{ site: null }`. */
export function scriptedContext(options: ScriptedOptions = {}): ScriptedContext {
  const recorder = options.recorder ?? new Recorder(options.answers);
  const site: SiteInfo | null =
    options.site === null ? null : { name: 'alleged', user: options.site?.name ?? 'alleged', host: 'web1.example.com', port: 22, vars: {}, ...options.site };
  return new ScriptedContext(recorder, scriptedRuntime(options, recorder, options.shared ?? new Map(), site));
}

/**
 * The error a task run ended with; fails the test if it succeeded.
 *
 * @example
 * const error = await errorOf(pull().run(c));
 * expect(error.message).toContain(sha);
 */
export async function errorOf(run: void | Promise<void>): Promise<Error> {
  try {
    await run;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the task to fail, but it succeeded');
}
