import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { AbortError } from '../core/errors.ts';
import { checkEnv, compose, EMPTY_SCOPE, joinCwd, sudoAsksNothing, wrapSudo, type Scope } from '../core/compose.ts';
import { shellCommand, toShellCommand, type CommandInput, type ShellValue } from '../core/quote.ts';
import { showPath } from '../core/show-path.ts';
import { isSecret, type Secret } from '../core/secret.ts';
import type { CheckResult, CommandFn, ConfirmOptions, Context, RunOptions, SiteInfo, SudoOptions } from '../core/context.ts';
import type { Result } from '../core/result.ts';
import { runCommand } from './run-command.ts';
import { siteFacts, type SiteRuntime, type TaskFrameRef } from './site-runtime.ts';

/** The task being run, so commands and skips are attributed to it. */
export type TaskFrame = TaskFrameRef;

type Call = [first: CommandInput | TemplateStringsArray, ...rest: unknown[]];

/** Splits `(cmd, options)` and tagged-template calls into a command and options. */
function parseCall<O>(args: Call): { command: ReturnType<typeof toShellCommand>; options: O | undefined } {
  const [first, ...rest] = args;
  if (Array.isArray(first) && 'raw' in first) {
    return { command: toShellCommand(first, rest as ShellValue[]), options: undefined };
  }
  return { command: toShellCommand(first as CommandInput), options: rest[0] as O | undefined };
}

/**
 * The Context tasks receive. Immutable: every derivation returns a new one
 * sharing the same runtime, so concurrent sites never share mutable state.
 */
export class TaskContext implements Context {
  constructor(
    private readonly rt: SiteRuntime,
    private readonly frame: TaskFrame,
    private readonly scope: Scope = EMPTY_SCOPE,
    private readonly defaults: RunOptions = {},
  ) {}

  get site(): SiteInfo {
    if (!this.rt.site) {
      throw new AbortError(`task "${this.frame.task}" runs once on the operator's machine and has no site; use c.local, or make it a per-site task`);
    }
    return this.rt.site;
  }

  get once(): boolean {
    return this.rt.site === null;
  }

  get shared(): Map<string, unknown> {
    return this.rt.shared;
  }

  get dryRun(): boolean {
    return this.rt.dryRun;
  }

  private derive(scope: Scope, defaults = this.defaults): TaskContext {
    return new TaskContext(this.rt, this.frame, scope, defaults);
  }

  // Like Fabric's Connection, cd/prefix/env apply to c.run, c.sudo and c.local alike.
  cd(dir: string): TaskContext {
    return this.derive({ ...this.scope, cwd: joinCwd(this.scope.cwd, dir) });
  }

  prefix(command: CommandInput): TaskContext {
    return this.derive({ ...this.scope, prefixes: [...this.scope.prefixes, toShellCommand(command)] });
  }

  env(vars: Record<string, string | number | Secret>): TaskContext {
    const checked = checkEnv(vars);
    // Known from now on: redacted even from output printed before a command uses it.
    for (const value of Object.values(checked)) if (isSecret(value)) this.rt.redactor.add(value.reveal());
    return this.derive({ ...this.scope, env: { ...this.scope.env, ...checked } });
  }

  warnOnly(): TaskContext {
    return this.with({ warn: true });
  }

  with(options: RunOptions): TaskContext {
    return this.derive(this.scope, { ...this.defaults, ...options });
  }

  readonly run: CommandFn<RunOptions> = (...args: Call) => {
    const { command, options } = parseCall<RunOptions>(args);
    const transport = this.rt.remote;
    if (!transport) {
      return Promise.reject(new AbortError(`c.run in run-once task "${this.frame.task}": it has no site to run on; use c.local`));
    }
    return runCommand(this.rt, {
      where: 'remote',
      transport,
      command,
      composed: compose(this.scope, command),
      cwd: this.scope.cwd,
      taskId: this.frame.taskId,
      options: { ...this.defaults, ...options },
    });
  };

  readonly local: CommandFn<RunOptions> = (...args: Call) => {
    const { command, options } = parseCall<RunOptions>(args);
    return runCommand(this.rt, {
      where: 'local',
      transport: this.rt.local,
      command,
      composed: compose(this.scope, command),
      cwd: this.scope.cwd,
      taskId: this.frame.taskId,
      options: { ...this.defaults, ...options },
    });
  };

  readonly sudo: CommandFn<SudoOptions> = async (...args: Call): Promise<Result> => {
    const { command, options = {} } = parseCall<SudoOptions>(args);
    const transport = this.rt.remote;
    if (!transport) throw new AbortError(`c.sudo in run-once task "${this.frame.task}": it has no site to run on`);
    const known = await this.rt.sudoPassword?.();
    if (known) this.rt.redactor.add(known);
    // A dry run cannot ask the server whether sudo needs the password there:
    // it shows the line a real run sends with the password, and says so once.
    if (known && this.rt.dryRun) this.noteDryRunSudo();
    const password = known && (this.rt.dryRun || !(await this.sudoAsksNothing(options.user))) ? known : undefined;
    const wrapped = wrapSudo(compose(this.scope, command), { user: options.user, password: password !== undefined });
    return runCommand(this.rt, {
      where: 'remote',
      transport,
      command,
      // The password line goes first on stdin (sudo reads exactly one line), then secret env values, then the command's own input.
      composed: password ? shellCommand(wrapped.text, wrapped.secrets, { shown: wrapped.shown, input: `${password}\n${wrapped.input}` }) : wrapped,
      cwd: this.scope.cwd,
      taskId: this.frame.taskId,
      options: { ...this.defaults, ...options },
    });
  };

  private noteDryRunSudo(): void {
    const facts = siteFacts(this.rt);
    if (facts.dryRunSudoNoted) return;
    facts.dryRunSudoNoted = true;
    this.log(`dry run: c.sudo is shown as sent with the sudo password on stdin (sudo -k -S -p ''); where sudo needs no password (NOPASSWD, checked with sudo -k -n true), a real run sends sudo -n instead`);
  }

  /** Asked once per site and target user: does sudo need no password at all there? */
  private sudoAsksNothing(user: string | undefined): Promise<boolean> {
    const probes = siteFacts(this.rt).sudoAsksNothing;
    const key = user ?? '';
    let probe = probes.get(key);
    if (!probe) {
      const transport = this.rt.remote as NonNullable<SiteRuntime['remote']>;
      const check = sudoAsksNothing(user);
      // Internal: a "no" here is an answer, not a failed command, so views never show it.
      probe = runCommand(this.rt, { where: 'remote', transport, command: check, composed: check, cwd: undefined, taskId: this.frame.taskId, options: { warn: true, quiet: true }, internal: true }).then((r) => r.ok);
      probes.set(key, probe);
    }
    return probe;
  }

  async confirm(question: string, options: ConfirmOptions = {}): Promise<boolean> {
    const { answer, by } = await this.rt.prompter.confirm({ site: this.rt.siteName, question, default: options.default });
    this.rt.bus.emit({ type: 'prompt', site: this.rt.siteName, kind: 'confirm', question, answer: answer ? 'yes' : 'no', by });
    return answer;
  }

  abort(message: string): never {
    throw new AbortError(message);
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    const transport = this.rt.remote ?? this.rt.local;
    this.log(`put ${showPath(localPath)} -> ${this.rt.targetFor('remote')}:${showPath(remotePath)}`);
    await transport.put(localPath, remotePath);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    const transport = this.rt.remote ?? this.rt.local;
    this.log(`get ${this.rt.targetFor('remote')}:${showPath(remotePath)} -> ${showPath(localPath)}`);
    // Like scp into a new folder: the local side is ours to prepare, whatever the transport.
    if (!this.rt.dryRun) await mkdir(dirname(resolve(localPath)), { recursive: true });
    await transport.get(remotePath, localPath);
  }

  invoke(task: string): Promise<void> {
    return this.rt.invoke(task, this.frame.taskId);
  }

  log(message: string): void {
    this.rt.bus.emit({ type: 'log', site: this.rt.siteName, level: 'info', message: this.rt.redactor.redact(message) });
  }

  warn(message: string): void {
    this.rt.bus.emit({ type: 'log', site: this.rt.siteName, level: 'warn', message: this.rt.redactor.redact(message) });
  }

  skip(reason: string): void {
    // The reason travels on the task's task:end event; views print it once, there.
    this.frame.skipped = reason;
  }

  runOnce<T>(key: string, label: string, fn: (c: Context) => Promise<T>): Promise<T> {
    return this.rt.runOnce(key, label, (rt, frame) => fn(new TaskContext(rt, frame)));
  }

  report(note: string): void {
    this.rt.report(this.rt.redactor.redact(note));
  }

  check(result: CheckResult): void {
    const redact = (text: string) => this.rt.redactor.redact(text);
    this.rt.bus.emit({
      type: 'check',
      site: this.rt.siteName,
      task: this.frame.task,
      name: redact(result.name),
      status: result.status,
      detail: redact(result.detail),
      ...(result.fix ? { fix: redact(result.fix) } : {}),
    });
  }
}
