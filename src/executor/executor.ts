import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { AbortError, CommandError, ConnectionError, EXIT, InterruptedError } from '../core/errors.ts';
import type { EventBus, SiteStatus, SiteSummary } from '../core/events.ts';
import { Redactor } from '../core/secret.ts';
import type { SiteInfo } from '../core/context.ts';
import type { LoadedDeployfile, ResolvedSite } from '../config/load.ts';
import type { TaskDefinition } from '../config/define.ts';
import { suggest } from '../config/suggest.ts';
import type { Prompter } from '../core/prompter.ts';
import type { Transport } from '../transports/transport.ts';
import type { SiteRuntime } from '../runner/site-runtime.ts';
import { TaskContext, type TaskFrame } from '../runner/task-context.ts';
import { HandshakeLimiter } from './handshakes.ts';
import { SiteConnection } from '../connection/site-connection.ts';
import { schedule } from './schedule.ts';
import { finishSite, runNeedsLock } from './guard.ts';
import { lockInfoFor } from '../connection/lock.ts';
import type { RetryPolicy } from './retry.ts';
import { formatDuration } from '../core/duration.ts';
import { siteTarget } from '../core/target.ts';
import { Activity, settleOrLetGo, tracked } from './activity.ts';
import { EscapedError, Escapes, type EscapeScope } from './escapes.ts';
import { deadlineStop, describeStop, HungTaskError, shortDuration, stopOf } from './stop.ts';

export interface ExecuteOptions {
  deployfile: LoadedDeployfile;
  /** Task names, run in this order on every site. */
  tasks: string[];
  sites: ResolvedSite[];
  bus: EventBus;
  prompter: Prompter;
  /** Creates the (lazily connecting) transport for a site. */
  transportFor: (site: ResolvedSite) => Transport;
  local: Transport;
  dryRun?: boolean;
  /** Sites run at once. */
  parallel?: number;
  /** Rolling batches of this many sites; the next starts only while failures stay under `maxFailures` (default 1). */
  batch?: number;
  /** No new site starts once this many have failed; default no limit (1 with `batch`). */
  maxFailures?: number;
  /** Caps SSH handshakes under way at once (sshd's MaxStartups); default a limiter of 8 for this run. */
  handshakes?: HandshakeLimiter;
  /** Take each site's deploy lock (~/.deployfile/lock) when a task needs it; default true, never in a dry run. */
  locks?: boolean;
  /** How connecting retries transient refusals; default DEFAULT_CONNECT_RETRY. */
  connectRetry?: RetryPolicy;
  /**
   * Ctrl-C, SIGTERM, SIGHUP: no new command or site starts, running ones are
   * ended. Abort it with `signalStop(name)` as the reason so the exit code
   * says which (a bare abort reads as Ctrl-C).
   */
  signal?: AbortSignal;
  /**
   * The run's deadline (`--deadline`): when it passes, the run stops as on
   * Ctrl-C, and the sites it cut short have failed (exit 1).
   */
  deadlineMs?: number;
  /** Values tasks find in `c.shared` from the start (a CLI command's parameters, e.g. `deploy rollback --to`). */
  shared?: Record<string, unknown>;
  /**
   * Scopes for errors that escape tasks (see escapes.ts); the CLI's process
   * handlers feed them back. Default: a scope of this run's own, unused.
   */
  escapes?: Escapes;
  /** How long a stopped site's tasks may take to finish once no command of theirs runs; default 1 s. */
  letGoAfterMs?: number;
  redactor?: Redactor;
  defaultTimeoutMs?: number;
  outputLimit?: number;
  sudoPassword?: () => Promise<string | undefined>;
}

export interface RunOutcome {
  status: 'ok' | 'failed' | 'interrupted';
  exitCode: number;
  summary: SiteSummary[];
  durationMs: number;
  /** Tasks given up on while still pending (hung, or left behind by an escaped error); their code may still hold the process. */
  leftPending: string[];
}

/** How long a stopped site's tasks get to finish once none of their commands runs. */
export const DEFAULT_LET_GO_MS = 1000;

/** How long a stopped site's commands may take to end before the site is let go regardless. */
const STOPPED_COMMAND_WAIT_MS = 15_000;

interface OpenTask {
  taskId: string;
  task: string;
  started: number;
  ended: boolean;
}

export function newRunId(): string {
  return randomUUID();
}

/** `user@host:port` of a site (see core/target.ts). */
export { siteTarget };

function statusOf(error: unknown): SiteStatus {
  if (error instanceof EscapedError) return 'failed';
  if (error instanceof InterruptedError) return 'interrupted';
  if (error instanceof AbortError || (error instanceof Error && error.name === 'AbortError')) return 'aborted';
  return 'failed';
}

/**
 * Runs the requested tasks on every site: each site's tasks in order, sites
 * in parallel up to `parallel`, run-once tasks once for the whole run.
 * Never throws for a site's failure: outcomes go to the events and the summary.
 */
export async function execute(options: ExecuteOptions): Promise<RunOutcome> {
  const { deployfile, bus } = options;
  const started = performance.now();
  // The run stops on the caller's signal or at the deadline, whichever comes first; the reason says which.
  const stopping = new AbortController();
  const signal = stopping.signal;
  // Every site running at once listens on the run's signal (its AbortSignal.any, its connection,
  // its running command): more than Node's default of 10 is the normal case, not a leak.
  setMaxListeners(Math.max(10, Math.min(options.sites.length, options.parallel ?? 1) * 8 + 10), signal);
  const onStop = (): void => stopping.abort(options.signal?.reason);
  if (options.signal?.aborted) onStop();
  else options.signal?.addEventListener('abort', onStop, { once: true });
  let deadline: NodeJS.Timeout | undefined;
  if (options.deadlineMs !== undefined && options.deadlineMs > 0) {
    const ms = options.deadlineMs;
    deadline = setTimeout(() => {
      if (signal.aborted) return;
      bus.emit({ type: 'log', site: null, level: 'warn', message: `${describeStop(deadlineStop(ms))} passed: ending running commands; no new command or site starts` });
      stopping.abort(deadlineStop(ms));
    }, ms);
  }
  const escapes = options.escapes ?? new Escapes();
  const letGoAfterMs = options.letGoAfterMs ?? DEFAULT_LET_GO_MS;
  // Local commands are everyone's: while one runs, a stopped site may be waiting on it.
  const localActivity = new Activity();
  const local = tracked(options.local, localActivity);
  // Per run, by site name (null: the run-once lane): the tasks under way, innermost last.
  const openTasks = new Map<string | null, OpenTask[]>();
  // Per site: how an escaped error fails it.
  const siteScopes = new Map<string, (error: EscapedError) => void>();
  const leftPending: string[] = [];
  const redactor = options.redactor ?? new Redactor();
  const shared = new Map<string, unknown>(Object.entries(options.shared ?? {}));
  const once = new Map<string, Promise<void>>();
  // c.runOnce work by key: every site asking for the same key shares one promise.
  const onceByKey = new Map<string, Promise<unknown>>();
  let taskCounter = 0;
  /** The task that failed first (innermost), kept beside errors for the summary. */
  const failedIn = new WeakMap<object, string>();
  // Shared by every site of the run: with ProxyJump all may go through one bastion.
  const handshakes = options.handshakes ?? new HandshakeLimiter();

  bus.emit({
    type: 'run:start',
    tasks: options.tasks,
    sites: options.sites.map((site) => ({ site: site.name, target: siteTarget(site) })),
    dryRun: options.dryRun ?? false,
    deployfile: deployfile.file,
  });

  const lookup = (name: string): TaskDefinition => {
    const definition = deployfile.tasks[name];
    if (definition) return definition;
    const hint = suggest(name, Object.keys(deployfile.tasks));
    throw new AbortError(`unknown task "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; tasks are: ${Object.keys(deployfile.tasks).join(', ')}`);
  };

  const runBody = async (rt: SiteRuntime, name: string, definition: TaskDefinition, parentTaskId: string | null): Promise<void> => {
    const taskId = `t${++taskCounter}`;
    const taskStarted = performance.now();
    bus.emit({ type: 'task:start', site: rt.siteName, task: name, taskId, parentTaskId, description: definition.description, once: definition.once ?? false });
    const frame: TaskFrame = { taskId, task: name };
    const open: OpenTask = { taskId, task: name, started: taskStarted, ended: false };
    const stack = openTasks.get(rt.siteName) ?? [];
    openTasks.set(rt.siteName, stack);
    stack.push(open);
    // An error escaping this task's code fails its site; in the run-once lane, this task (every site waiting on it).
    let escaped: ((error: EscapedError) => void) | undefined;
    const escapedHere = new Promise<never>((_, reject) => (escaped = reject));
    escapedHere.catch(() => undefined);
    const siteFail = rt.siteName === null ? undefined : siteScopes.get(rt.siteName);
    const scope: EscapeScope = { site: rt.siteName, task: name, fail: siteFail ?? ((error) => escaped?.(error)) };
    try {
      const body = escapes.run(scope, () => definition.run(new TaskContext(rt, frame)));
      await (rt.siteName === null ? Promise.race([body, escapedHere]) : body);
      if (open.ended) return;
      const durationMs = Math.round(performance.now() - taskStarted);
      bus.emit({ type: 'task:end', site: rt.siteName, task: name, taskId, status: frame.skipped ? 'skipped' : 'ok', durationMs, note: frame.skipped });
    } catch (error) {
      if (open.ended) throw error;
      const inner = error instanceof Object ? failedIn.get(error) : undefined;
      if (error instanceof Object && !inner) failedIn.set(error, name);
      // The task where it happened carries the whole error; the tasks around it
      // only point there, so a view doesn't print the same stderr tail at every level.
      const message = inner ? `failed in ${inner}` : redactor.redact(error instanceof Error ? error.message : String(error));
      bus.emit({ type: 'task:end', site: rt.siteName, task: name, taskId, status: 'failed', durationMs: Math.round(performance.now() - taskStarted), error: message });
      throw error;
    } finally {
      open.ended = true;
      const at = stack.indexOf(open);
      if (at >= 0) stack.splice(at, 1);
    }
  };

  /** Ends the tasks still open on `site` (given up on), so every view closes them; returns the innermost one's name. */
  const closeOpenTasks = (site: string | null, message: string): string | undefined => {
    const stack = openTasks.get(site) ?? [];
    const innermost = stack.at(-1)?.task;
    for (const open of [...stack].reverse()) {
      open.ended = true;
      leftPending.push(site === null ? open.task : `${open.task} on ${site}`);
      bus.emit({ type: 'task:end', site, task: open.task, taskId: open.taskId, status: 'failed', durationMs: Math.round(performance.now() - open.started), error: message });
    }
    stack.length = 0;
    return innermost;
  };

  /** The error a stopped site (or lane) is given up with: which task hung, and after what. */
  const hungError = (site: string | null, why: string): HungTaskError => {
    const task = (openTasks.get(site) ?? []).at(-1)?.task ?? 'its task';
    const message = `task ${task} did not finish (no command running) ${shortDuration(letGoAfterMs)} after ${why}; stopped waiting for it`;
    const error = new HungTaskError(task, message);
    failedIn.set(error, task);
    closeOpenTasks(site, message);
    return error;
  };
  const stopText = (siteSignal: AbortSignal): string => {
    const stop = stopOf(signal);
    if (signal.aborted && stop) return describeStop(stop);
    return siteSignal.reason instanceof EscapedError ? 'an error escaped it' : 'the site was stopped';
  };

  const runTask = (rt: SiteRuntime, name: string, parentTaskId: string | null): Promise<void> => {
    const definition = lookup(name);
    if (!definition.once || rt.site === null) return runBody(rt, name, definition, parentTaskId);
    // Every site waits on the same promise: the first to get here starts it.
    let pending = once.get(name);
    if (!pending) {
      pending = runBody(onceRuntime, name, definition, null);
      once.set(name, pending);
    }
    return pending;
  };

  /** One piece of c.runOnce work, in the run-once lane, told as a task of its own (its label). */
  const runKeyed = <T>(key: string, label: string, fn: (rt: SiteRuntime, frame: TaskFrame) => Promise<T>): Promise<T> => {
    let pending = onceByKey.get(key) as Promise<T> | undefined;
    if (!pending) {
      pending = (async () => {
        const taskId = `t${++taskCounter}`;
        const taskStarted = performance.now();
        bus.emit({ type: 'task:start', site: null, task: label, taskId, parentTaskId: null, once: true });
        const frame: TaskFrame = { taskId, task: label };
        let escaped: ((error: EscapedError) => void) | undefined;
        const escapedHere = new Promise<never>((_, reject) => (escaped = reject));
        escapedHere.catch(() => undefined);
        try {
          // Its own scope: it runs for every site that asks, not for the first one.
          const body = escapes.run({ site: null, task: label, fail: (error) => escaped?.(error) }, () => fn(onceRuntime, frame));
          const value = await Promise.race([body, escapedHere]);
          bus.emit({ type: 'task:end', site: null, task: label, taskId, status: frame.skipped ? 'skipped' : 'ok', durationMs: Math.round(performance.now() - taskStarted), note: frame.skipped });
          return value;
        } catch (error) {
          if (error instanceof Object && !failedIn.has(error)) failedIn.set(error, label);
          const message = redactor.redact(error instanceof Error ? error.message : String(error));
          bus.emit({ type: 'task:end', site: null, task: label, taskId, status: 'failed', durationMs: Math.round(performance.now() - taskStarted), error: message });
          throw error;
        }
      })();
      onceByKey.set(key, pending);
    }
    return pending;
  };

  const makeRuntime = (site: ResolvedSite | null, remote: Transport | null, notes?: string[], siteSignal: AbortSignal = signal, skipped?: string[]): SiteRuntime => {
    const info: SiteInfo | null = site ? { name: site.name, user: site.user, host: site.host, port: site.port ?? 22, vars: site.vars } : null;
    const rt: SiteRuntime = {
      site: info,
      siteName: site?.name ?? null,
      remote,
      local,
      bus,
      redactor,
      prompter: options.prompter,
      shared,
      dryRun: options.dryRun ?? false,
      signal: siteSignal,
      defaultTimeoutMs: options.defaultTimeoutMs,
      outputLimit: options.outputLimit,
      sudoPassword: options.sudoPassword,
      invoke: (task, parentTaskId) => runTask(rt, task, parentTaskId),
      runOnce: runKeyed,
      // Only a site's notes reach the summary; the run-once lane has no row.
      report: (note) => {
        if (notes && !notes.includes(note)) notes.push(note);
      },
      skippedFailure: (what) => skipped?.push(what),
      targetFor: (where) => (where === 'local' || !remote ? 'local' : remote.target),
    };
    return rt;
  };
  const onceRuntime = makeRuntime(null, null);

  /**
   * Waits until nothing runs on the site. Once the site is stopped its commands are being ended (TERM, KILL
   * after 2 s); a transport that never reports the end must not hold the run, so that wait is bounded.
   */
  const untilIdle = async (activity: Activity, siteSignal: AbortSignal, site: string): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      const arm = (): void => void (timer = setTimeout(resolve, STOPPED_COMMAND_WAIT_MS));
      if (siteSignal.aborted) arm();
      else siteSignal.addEventListener('abort', arm, { once: true });
    });
    await Promise.race([activity.idle(), bound]);
    if (timer) clearTimeout(timer);
    if (activity.busy) {
      bus.emit({ type: 'log', site, level: 'warn', message: `a command on site ${site} was still running ${shortDuration(STOPPED_COMMAND_WAIT_MS)} after it was told to end; letting go of the site anyway` });
    }
  };

  let stopStarting = false;
  // The site's lock: taken with its first connection, unless every task says it needs none (or nothing really runs).
  const definitions = options.tasks.map(lookup);
  const locking = !options.dryRun && (options.locks ?? true) && runNeedsLock(definitions);
  const lockInfo = lockInfoFor(bus.runId, options.tasks, deployfile.file);
  // A run with a task of its own per site will talk to each site; a dry run or a run-once task alone does not.
  const connectsEarly = !options.dryRun && definitions.some((definition) => !definition.once);
  const runSite = async (site: ResolvedSite): Promise<SiteSummary> => {
    const siteStarted = performance.now();
    const target = siteTarget(site);
    bus.emit({ type: 'site:start', site: site.name, target });
    // The site's connection life (handshake slot, retry, lock, release): see connection/site-connection.ts.
    const transport = new SiteConnection({
      site: site.name,
      open: () => options.transportFor(site),
      handshakes,
      retry: options.connectRetry,
      signal,
      // Transient refusals (sshd's MaxStartups under load) are retried, and the run says so.
      onRetry: ({ error, attempt, attempts, delayMs }) =>
        bus.emit({ type: 'log', site: site.name, level: 'warn', message: `${error.message}; retrying in ${formatDuration(delayMs)} (attempt ${attempt + 1} of ${attempts})` }),
      // Taken with the connection, before the site's first remote command.
      lock: locking ? lockInfo : undefined,
      bus,
      redactor,
    });
    // The handshake needs nothing from the tasks: start it now, so it overlaps what runs first on
    // this machine (the tests, the push) instead of waiting behind it. The lock waits for the first command.
    if (connectsEarly) transport.preconnect();
    // The site stops with the run, or alone when an error escapes its tasks.
    const siteStop = new AbortController();
    const siteSignal = AbortSignal.any([signal, siteStop.signal]);
    const siteActivity = new Activity();
    let escape: EscapedError | undefined;
    let siteDone = false;
    siteScopes.set(site.name, (error) => {
      if (siteDone) {
        bus.emit({ type: 'log', site: site.name, level: 'error', message: redactor.redact(`${error.message} (after the site had finished)`) });
        return;
      }
      if (escape) return;
      escape = error;
      failedIn.set(error, error.task);
      bus.emit({ type: 'log', site: site.name, level: 'error', message: redactor.redact(error.message) });
      siteStop.abort(error);
    });
    const notes: string[] = [];
    const failuresSkipped: string[] = [];
    const rt = makeRuntime(site, tracked(transport, siteActivity), notes, siteSignal, failuresSkipped);
    let summary: SiteSummary;
    let failure: unknown;
    // Index of the task under way: what ran, what was interrupted, what never started.
    let current = -1;
    const work = (async () => {
      for (const name of options.tasks) {
        current++;
        await runTask(rt, name, null);
      }
    })();
    try {
      // A stopped site whose task awaits something that never settles is let go, not waited for forever.
      await settleOrLetGo(work, { signal: siteSignal, activities: [siteActivity, localActivity], graceMs: letGoAfterMs, hung: () => hungError(site.name, stopText(siteSignal)) });
    } catch (error) {
      failure = error;
    }
    // Nothing this site started (an unawaited command too) may still run when its lock is released:
    // a failed site's leftovers are ended, a finished one's are waited for.
    if (failure !== undefined) siteStop.abort(siteSignal.reason ?? failure);
    await untilIdle(siteActivity, siteSignal, site.name);
    // A command that failed as it ended reports its escape in the next turn.
    await new Promise((resolve) => setImmediate(resolve));
    if (escape) failure = escape;
    if (failure === undefined) {
      summary = { site: site.name, target, status: 'ok', durationMs: 0 };
    } else {
      const error = failure;
      let status = statusOf(error);
      let message = redactor.redact(error instanceof CommandError ? error.shortMessage : error instanceof Error ? error.message : String(error));
      const stop = stopOf(signal);
      if (stop?.kind === 'deadline' && status === 'interrupted') {
        // A deadline is a failure of the run, not someone's Ctrl-C.
        status = 'failed';
        if (!(error instanceof HungTaskError)) message = `${describeStop(stop)} passed; ${message}`;
      }
      if (status === 'interrupted') stopStarting = true;
      summary = {
        site: site.name,
        target,
        status,
        durationMs: 0,
        failedTask: error instanceof Object ? failedIn.get(error) : undefined,
        failedCommand: error instanceof CommandError || error instanceof InterruptedError || error instanceof ConnectionError ? error.command : undefined,
        error: message,
        tasksDone: options.tasks.slice(0, Math.max(0, current)),
        tasksNotRun: options.tasks.slice(current + 1),
      };
    }
    summary.durationMs = Math.round(performance.now() - siteStarted);
    if (notes.length > 0) summary.notes = notes;
    if (failuresSkipped.length > 0) summary.failuresSkipped = failuresSkipped;
    try {
      // Whatever happened (failure, abort, Ctrl-C, a lost connection): record it and let go of the site.
      if (transport.held) {
        await finishSite({
          site: site.name,
          info: lockInfo,
          transport,
          reconnect: () => transport.reopen(),
          error: failure,
          outcome: summary.status,
          durationMs: summary.durationMs,
          failedTask: summary.failedTask,
          errorMessage: summary.error,
          shared,
          bus,
          redactor,
        });
      }
    } finally {
      siteDone = true;
      await transport.close().catch(() => {});
    }
    bus.emit({ type: 'site:end', ...summary });
    return summary;
  };

  let summary: SiteSummary[] = [];
  let onceFailed = false;
  const allOnce = options.tasks.every((name) => lookup(name).once);
  if (allOnce || options.sites.length === 0) {
    // Nothing to do per site: run the run-once tasks on their own.
    try {
      const work = (async () => {
        for (const name of options.tasks) await runTask(onceRuntime, name, null);
      })();
      await settleOrLetGo(work, { signal, activities: [localActivity], graceMs: letGoAfterMs, hung: () => hungError(null, stopText(signal)) });
    } catch (error) {
      onceFailed = true;
      if (statusOf(error) === 'interrupted') stopStarting = true;
      if (!(error instanceof CommandError || error instanceof AbortError || error instanceof ConnectionError || error instanceof InterruptedError)) {
        bus.emit({ type: 'log', site: null, level: 'error', message: redactor.redact(error instanceof Error ? (error.stack ?? error.message) : String(error)) });
      }
    }
  } else {
    summary = await schedule(
      options.sites,
      { parallel: options.parallel ?? 1, batch: options.batch, maxFailures: options.maxFailures },
      {
        work: (site) => runSite(site),
        notStarted: (site) => {
          const skipped: SiteSummary = { site: site.name, target: siteTarget(site), status: 'not-started', durationMs: 0 };
          bus.emit({ type: 'site:end', ...skipped });
          return skipped;
        },
        failed: (row) => row.status === 'failed' || row.status === 'aborted',
        shouldStart: () => !stopStarting && !signal.aborted,
      },
    );
  }

  if (deadline) clearTimeout(deadline);
  options.signal?.removeEventListener('abort', onStop);
  // Stopped by a signal: interrupted, exit 128 + its number. By the deadline: failed, exit 1.
  const stop = stopOf(signal);
  const interrupted = stop?.kind === 'signal' || (stop === undefined && summary.some((s) => s.status === 'interrupted'));
  const failed = onceFailed || stop?.kind === 'deadline' || summary.some((s) => s.status !== 'ok');
  const status = interrupted ? 'interrupted' : failed ? 'failed' : 'ok';
  const exitCode = interrupted ? (stop?.kind === 'signal' ? stop.exitCode : EXIT.interrupted) : failed ? EXIT.failed : EXIT.ok;
  const durationMs = Math.round(performance.now() - started);
  bus.emit({ type: 'run:end', status, exitCode, durationMs, summary });
  return { status, exitCode, summary, durationMs, leftPending };
}
