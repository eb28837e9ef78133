import { checkEnv, compose, EMPTY_SCOPE, joinCwd, wrapSudo, type Scope } from '../../src/core/compose.ts';
import { toShellCommand, type CommandInput, type ShellValue } from '../../src/core/quote.ts';
import { AbortError, CommandError } from '../../src/core/errors.ts';
import type { Context, RunOptions, SiteInfo, SudoOptions } from '../../src/core/context.ts';
import type { Result } from '../../src/core/result.ts';

/** One command a task sent, as the shell would receive it. */
export interface RecordedCommand {
  where: 'remote' | 'local' | 'sudo';
  /** As the task wrote it. */
  command: string;
  /** The exact shell line, with exports, cd and prefixes. */
  line: string;
  cwd: string | undefined;
  options: RunOptions & SudoOptions;
}

/** How a scripted command ends; anything left out is a success with no output. */
export interface Scripted {
  stdout?: string;
  stderr?: string;
  exitCode?: number;
}

/** Matches a command by its shell line: a substring, a regexp or a predicate. */
export type Matcher = string | RegExp | ((command: RecordedCommand) => boolean);

interface Rule {
  match: Matcher;
  result: Scripted | ((command: RecordedCommand) => Scripted);
  times: number;
}

export interface FakeOptions {
  site?: Partial<SiteInfo> | null;
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
}

/** Everything a fake context saw, shared by the contexts derived from it. */
export class Recorder {
  readonly commands: RecordedCommand[] = [];
  readonly logs: string[] = [];
  readonly warnings: string[] = [];
  readonly skips: string[] = [];
  readonly questions: string[] = [];
  readonly invoked: string[] = [];
  /** c.report notes, in order. */
  readonly reports: string[] = [];
  /** c.runOnce work by key, as the executor keeps it: one run per key. */
  readonly once = new Map<string, { label: string; result: Promise<unknown> }>();
  readonly rules: Rule[] = [];
  readonly answers: boolean[];

  constructor(answers: boolean[] = []) {
    this.answers = [...answers];
  }

  /** The shell lines sent so far. */
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
 * A Context that runs nothing: it records each command's composed line
 * (built by the engine's own `compose`, so tests assert the exact shell text)
 * and answers from a script. Failing scripted commands throw the engine's
 * CommandError unless the call was warn-only, as the real runner does.
 *
 * @example
 * const c = fakeContext({ site: { name: 'alleged' } });
 * c.script('git rev-parse HEAD', { stdout: 'abc\n' });
 * await pull().run(c);
 * expect(c.recorder.lines).toEqual(['cd /home/alleged/Sites/alleged && git pull --ff-only', ...]);
 */
export class FakeContext implements Context {
  readonly recorder: Recorder;
  readonly shared: Map<string, unknown>;
  readonly dryRun: boolean;
  private readonly siteInfo: SiteInfo | null;
  private readonly options: FakeOptions;

  constructor(
    options: FakeOptions = {},
    recorder?: Recorder,
    private readonly scope: Scope = EMPTY_SCOPE,
    private readonly defaults: RunOptions = {},
  ) {
    this.recorder = recorder ?? new Recorder(options.answers);
    this.shared = options.shared ?? new Map();
    this.dryRun = options.dryRun ?? false;
    this.siteInfo =
      options.site === null
        ? null
        : { name: 'alleged', user: options.site?.name ?? 'alleged', host: 'web1.example.com', port: 22, vars: {}, ...options.site };
    this.options = options;
  }

  /** Answer commands whose line matches with `result` (the first `times` of them; default every one). */
  script(match: Matcher, result: Scripted | ((command: RecordedCommand) => Scripted), times = Infinity): this {
    this.recorder.rules.push({ match, result, times });
    return this;
  }

  get site(): SiteInfo {
    if (!this.siteInfo) throw new AbortError('this fake context is a run-once lane: it has no site');
    return this.siteInfo;
  }

  get once(): boolean {
    return this.siteInfo === null;
  }

  private derive(scope: Scope, defaults = this.defaults): FakeContext {
    return new FakeContext({ ...this.options, shared: this.shared }, this.recorder, scope, defaults);
  }

  cd(dir: string): FakeContext {
    return this.derive({ ...this.scope, cwd: joinCwd(this.scope.cwd, dir) });
  }

  prefix(command: CommandInput): FakeContext {
    return this.derive({ ...this.scope, prefixes: [...this.scope.prefixes, toShellCommand(command)] });
  }

  env(vars: Record<string, string | number>): FakeContext {
    return this.derive({ ...this.scope, env: { ...this.scope.env, ...checkEnv(vars) } });
  }

  warnOnly(): FakeContext {
    return this.with({ warn: true });
  }

  with(options: RunOptions): FakeContext {
    return this.derive(this.scope, { ...this.defaults, ...options });
  }

  private exec(where: RecordedCommand['where'], args: unknown[]): Promise<Result> {
    const [first, ...rest] = args as [CommandInput | TemplateStringsArray, ...unknown[]];
    const template = Array.isArray(first) && 'raw' in first;
    const command = template ? toShellCommand(first, rest as ShellValue[]) : toShellCommand(first as CommandInput);
    const options: RunOptions & SudoOptions = { ...this.defaults, ...(template ? {} : ((rest[0] as RunOptions | undefined) ?? {})) };
    if (where !== 'local' && !this.siteInfo) return Promise.reject(new AbortError(`c.${where === 'sudo' ? 'sudo' : 'run'} in a run-once task`));
    let composed = compose(this.scope, command);
    if (where === 'sudo') composed = wrapSudo(composed, { user: options.user, password: false });
    const recorded: RecordedCommand = { where, command: command.text, line: composed.text, cwd: this.scope.cwd, options };
    this.recorder.commands.push(recorded);

    const rule = this.recorder.rules.find((r) => r.times > 0 && matches(r.match, recorded));
    if (rule) rule.times -= 1;
    const scripted = rule ? (typeof rule.result === 'function' ? rule.result(recorded) : rule.result) : {};
    const exitCode = this.dryRun ? 0 : (scripted.exitCode ?? 0);
    const result: Result = {
      command: command.text,
      composed: composed.text,
      site: this.siteInfo?.name ?? null,
      target: where === 'local' ? 'local' : `${this.siteInfo?.user}@${this.siteInfo?.host}`,
      where: where === 'local' ? 'local' : 'remote',
      cwd: this.scope.cwd,
      stdout: this.dryRun ? '' : (scripted.stdout ?? ''),
      stderr: this.dryRun ? '' : (scripted.stderr ?? ''),
      exitCode,
      signal: null,
      timedOut: false,
      durationMs: 1,
      ok: exitCode === 0,
      failed: exitCode !== 0,
    };
    if (result.failed && !options.warn && this.options.onFailure !== 'skip') return Promise.reject(new CommandError(result));
    return Promise.resolve(result);
  }

  readonly run = ((...args: unknown[]) => this.exec('remote', args)) as Context['run'];
  readonly local = ((...args: unknown[]) => this.exec('local', args)) as Context['local'];
  readonly sudo = ((...args: unknown[]) => this.exec('sudo', args)) as Context['sudo'];

  async confirm(question: string, options: { default?: boolean } = {}): Promise<boolean> {
    this.recorder.questions.push(question);
    return this.recorder.answers.length > 0 ? (this.recorder.answers.shift() as boolean) : (options.default ?? false);
  }

  abort(message: string): never {
    throw new AbortError(message);
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    this.recorder.logs.push(`put ${localPath} -> ${remotePath}`);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    this.recorder.logs.push(`get ${remotePath} -> ${localPath}`);
  }

  async invoke(task: string): Promise<void> {
    this.recorder.invoked.push(task);
  }

  log(message: string): void {
    this.recorder.logs.push(message);
  }

  warn(message: string): void {
    this.recorder.warnings.push(message);
  }

  skip(reason: string): void {
    this.recorder.skips.push(reason);
  }

  /** Like the executor: once per key, in a run-once lane (no site) that shares this recorder. */
  runOnce<T>(key: string, label: string, fn: (c: Context) => Promise<T>): Promise<T> {
    let entry = this.recorder.once.get(key);
    if (!entry) {
      const lane = new FakeContext({ ...this.options, site: null, shared: this.shared }, this.recorder);
      entry = { label, result: fn(lane) };
      this.recorder.once.set(key, entry);
    }
    return entry.result as Promise<T>;
  }

  report(note: string): void {
    this.recorder.reports.push(note);
  }
}

/** A fake context for one site (default `alleged`), or for the run-once lane with `{ site: null }`. */
export function fakeContext(options: FakeOptions = {}): FakeContext {
  return new FakeContext(options);
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
