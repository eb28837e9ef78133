import type { Result } from './result.ts';
import type { CommandInput, ShellValue } from './quote.ts';
import type { Secret } from './secret.ts';

/** What a task knows about its site. */
export interface SiteInfo<V = Record<string, unknown>> {
  readonly name: string;
  readonly user: string;
  readonly host: string;
  readonly port: number;
  readonly vars: V;
}

/** Per-call options for run, local and sudo. */
export interface RunOptions {
  /** Return a failed result instead of throwing (Fabric's warn=True). */
  warn?: boolean;
  /** Kill the command after this long: `'10m'`, `'90s'` or milliseconds. */
  timeout?: string | number;
  /** Don't stream this command's output to views (it is still captured). */
  quiet?: boolean;
  /** Written to the command's stdin. */
  stdin?: string;
  /**
   * What views, errors and the summary call this command instead of its text,
   * for a long script that reads better by what it does. The exact line still
   * goes to `--json` (`composed`) and `--dry-run`.
   */
  label?: string;
}

export interface SudoOptions extends RunOptions {
  /** Run as this user instead of root. */
  user?: string;
}

export interface ConfirmOptions {
  /** The answer on Enter. Without a TTY the answer is yes only with --yes. */
  default?: boolean;
}

/**
 * A check's verdict, as `c.check` reports it: what was checked, what was
 * found, and for a warn or fail the fix in one line.
 */
export interface CheckResult {
  /** Short and stable, e.g. `vassal ini owner`. */
  name: string;
  status: 'pass' | 'warn' | 'fail';
  /** What was found, one line (a traceback may follow on further lines). */
  detail: string;
  /** What to do about a warn or fail, one line. */
  fix?: string;
}

/**
 * A command runner that takes either a string, an `sh` command, or a tagged
 * template whose values are quoted: ``c.run`git checkout ${ref}` ``.
 */
export interface CommandFn<O> {
  (command: CommandInput, options?: O): Promise<Result>;
  (strings: TemplateStringsArray, ...values: ShellValue[]): Promise<Result>;
}

/**
 * What every task receives. Derived contexts (`cd`, `prefix`, `env`,
 * `warnOnly`, `with`) are new objects, so tasks running on several sites at
 * once can never step on each other.
 *
 * @example
 * export const pull = task('Pull the code', async (c) => {
 *   const app = c.cd(`~/Sites/${c.site.name}`).prefix('. ~/virtualenvs/x/bin/activate');
 *   await app.run('git pull --ff-only');
 * });
 */
export interface Context<V = Record<string, unknown>> {
  /** The site this task runs for. Run-once tasks have none: reading it throws. */
  readonly site: SiteInfo<V>;
  /** True when the task runs once per run on the operator's machine. */
  readonly once: boolean;
  /** Values tasks share within one run (e.g. the revision `push` pushed). */
  readonly shared: Map<string, unknown>;
  /** True under --dry-run: commands are printed, not run. */
  readonly dryRun: boolean;

  /** Run on the site, as the site's user. */
  run: CommandFn<RunOptions>;
  /** Run on the operator's machine. */
  local: CommandFn<RunOptions>;
  /** Run on the site through sudo (as root, or `options.user`). */
  sudo: CommandFn<SudoOptions>;

  /** A context whose commands run in `dir` (relative dirs join the current one). */
  cd(dir: string): Context<V>;
  /** A context whose commands run after `command` succeeded, e.g. activating a virtualenv. */
  prefix(command: CommandInput): Context<V>;
  /**
   * A context whose commands see these environment variables. A `secret()`
   * value is sent on the command's stdin and exported by the shell, so it is
   * on no command line (`ps` on the server never shows it).
   *
   * @example
   * await c.env({ PGPASSWORD: secret(process.env.DB_PASSWORD) }).run(sh`createdb -h db -U ${c.site.user} shop`)
   */
  env(vars: Record<string, string | number | Secret>): Context<V>;
  /** A context in which failing commands return their result instead of throwing. */
  warnOnly(): Context<V>;
  /** A context with default options for every command (e.g. `{ timeout: '10m' }`). */
  with(options: RunOptions): Context<V>;

  /** Ask a yes/no question; one question is on screen at a time. */
  confirm(question: string, options?: ConfirmOptions): Promise<boolean>;
  /** Stop this site's run with a message (exit 1). */
  abort(message: string): never;
  /** Copy a local file to the site over SFTP. */
  put(localPath: string, remotePath: string): Promise<void>;
  /** Copy a file from the site to the operator's machine over SFTP. */
  get(remotePath: string, localPath: string): Promise<void>;
  /** Run another task of the deployfile here (run-once tasks run once per run). */
  invoke(task: string): Promise<void>;
  /** Say something in the view and the event stream. */
  log(message: string): void;
  /** Like log, as a warning. */
  warn(message: string): void;
  /** Mark the current task as skipped, with the reason shown to the user. */
  skip(reason: string): void;
  /**
   * Run `fn` once per run for `key`, on the operator's machine, however many
   * sites ask: the first caller starts it, every caller with the same key
   * waits for that one run and gets its result (or its error). This is how a
   * per-site task does local work that several sites share, such as testing
   * and pushing one working copy that several sites deploy. `label` names the
   * work in views and events (e.g. `test ~/src/shop`).
   *
   * @example
   * const sha = await c.runOnce(`push:${dir}`, `push ${dir}`, (local) => pushFrom(local, dir));
   */
  runOnce<T>(key: string, label: string, fn: (c: Context) => Promise<T>): Promise<T>;
  /**
   * Add a short line to this site's row in the end-of-run summary (and its
   * `site:end` event's `notes`), e.g. which revision it got and from where.
   *
   * @example
   * c.report(`bf23819 from ~/src/shop`);
   */
  report(note: string): void;
  /**
   * Report the verdict of one read-only check (a `check` event: one line in
   * the views, one event in `--json`, a row in the run's checks table). It
   * does not fail the task: throw or `c.abort` for that.
   *
   * @example
   * c.check({ name: 'disk space', status: 'warn', detail: '180 MiB free on /home', fix: 'free some space' });
   */
  check(result: CheckResult): void;
}
