import { EXIT } from '../core/errors.ts';
import { findDeployfile, loadDeployfile, type LoadedDeployfile, type ResolvedSite } from '../config/load.ts';
import { Escapes } from '../executor/escapes.ts';
import { describeStop, signalExitCode, signalStop, STOP_SIGNALS, type StopSignal } from '../executor/stop.ts';
import { checkTasks, selectSites } from '../executor/select.ts';
import { runEngine, type EngineRun } from './engine.ts';
import { parseDeployRunOptions, splitList } from './options.ts';
import { someoneAtTerminal } from '../prompts/terminal.ts';
import { reportFatal } from './report.ts';
import { blockingStdio } from './stdio.ts';

/**
 * Someone is at the keyboard for `deploy run`: stdin and stdout are a terminal
 * and no CI says otherwise. Kept for `deploy demo`; it is {@link someoneAtTerminal}.
 */
export function isInteractive(): boolean {
  return someoneAtTerminal(process.stdout);
}

/** How a command built on `deploy run` (doctor, provision) adapts the run to itself. */
export interface DeployRunHooks {
  /** Built-in tasks the command runs; the deployfile's own tasks of the same name win. */
  withTasks?: (deployfile: LoadedDeployfile) => LoadedDeployfile['tasks'];
  /**
   * The selected sites as the run reaches them, e.g. through each one's admin
   * account (see adminSite). May throw a UsageError (exit 2, nothing ran).
   */
  sites?: (sites: ResolvedSite[]) => ResolvedSite[];
  /** The command prints its own document on stdout (`deploy plan --json`): views go to stderr, no JSON events. */
  documentOnStdout?: boolean;
  /** Sees every event of the run (e.g. each site's `site:end`). */
  observe?: EngineRun['observe'];
}

/**
 * `deploy run <task...>` (and `deploy rollback`, `deploy releases`, which run a
 * built-in task): composes options, views, prompter and engine once; returns the
 * exit code. Not the runner's `runCommand`, which runs one command of a task.
 *
 * @example process.exitCode = await deployRun(['deploy'], { site: 'web1' });
 */
export async function deployRun(tasks: string[], flags: Record<string, unknown>, shared?: Record<string, unknown>, hooks: DeployRunHooks = {}): Promise<number> {
  let options;
  let deployfile;
  let sites;
  try {
    options = parseDeployRunOptions(flags);
    deployfile = await loadDeployfile(findDeployfile(options.file));
    if (hooks.withTasks) deployfile = { ...deployfile, tasks: { ...hooks.withTasks(deployfile), ...deployfile.tasks } };
    checkTasks(deployfile, tasks);
    sites = selectSites(deployfile, { site: splitList(options.site), exclude: splitList(options.exclude), shard: options.shard });
    if (hooks.sites) sites = hooks.sites(sites);
  } catch (error) {
    return reportFatal(error);
  }
  for (const name of ['DEPLOY_SITE', 'DEPLOY_EXCLUDE'] as const) {
    // An empty variable means "not set" (CI templates define it either way); say so, since -s '' is refused.
    if (process.env[name] === '' && flags[name === 'DEPLOY_SITE' ? 'site' : 'exclude'] === undefined) {
      process.stderr.write(`deploy: ${name} is set but empty: taken as not set (${name === 'DEPLOY_SITE' ? 'every site' : 'no site left out'})\n`);
    }
  }
  if (options.shard && sites.length === 0) {
    // A CI matrix may have more runners than this slice has sites; run-once tasks would run for nothing.
    process.stderr.write(`deploy: shard ${options.shard.index}/${options.shard.count} holds none of the selected sites; nothing to do\n`);
    return EXIT.ok;
  }

  // Output streams at the reader's pace instead of piling up in memory (see stdio.ts).
  blockingStdio();
  const interactive = isInteractive() && !options.json;
  const interrupt = new AbortController();
  // The first Ctrl-C, SIGTERM (a cancelled CI job) or SIGHUP (a closed terminal): start nothing new,
  // end the running commands, release the locks, write the history, print the summary; exit 128 + n.
  // A second one: leave now (locks stay, for deploy unlock).
  let stoppedBy: StopSignal | undefined;
  const onSignal = (signal: StopSignal): void => {
    if (stoppedBy === undefined) {
      stoppedBy = signal;
      const again = signal === 'SIGINT' ? 'Ctrl-C again' : `send ${signal} again`;
      process.stderr.write(`\nInterrupted by ${describeStop(signalStop(signal))}: ending running commands, then releasing the locks (${again} to exit at once)\n`);
      interrupt.abort(signalStop(signal));
    } else {
      process.exit(signalExitCode(signal));
    }
  };
  const signalHandlers = STOP_SIGNALS.map((signal) => [signal, () => onSignal(signal)] as const);
  for (const [signal, handler] of signalHandlers) process.on(signal, handler);

  // A rejection nobody awaits, or a throw in a task's timer, fails the site it came from instead of the process.
  const escapes = new Escapes();
  let escapedOutside = false;
  const onEscape = (reason: unknown): void => {
    if (escapes.contain(reason)) return;
    // Outside every task: a view or the engine itself. Say it, finish the run, exit non-zero.
    escapedOutside = true;
    process.stderr.write(`deploy: unexpected error outside any task: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}\n`);
  };
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);

  try {
    const outcome = await runEngine({ deployfile, tasks, sites, options, interactive, signal: interrupt.signal, escapes, shared, documentOnStdout: hooks.documentOnStdout, observe: hooks.observe });
    if (stoppedBy) process.stderr.write(`deploy: stopped by ${describeStop(signalStop(stoppedBy))}; exit ${outcome.exitCode}\n`);
    if (outcome.leftPending.length > 0) {
      process.stderr.write(`deploy: gave up waiting for: ${outcome.leftPending.join(', ')}\n`);
    }
    if (outcome.leftPending.length > 0 || escapes.seen > 0 || escapedOutside) {
      // Code given up on (a hung task, a timer that keeps throwing) may hold the event loop: leave once the output is out.
      setTimeout(() => process.exit(), 200).unref();
    }
    return escapedOutside && outcome.exitCode === EXIT.ok ? EXIT.failed : outcome.exitCode;
  } catch (error) {
    return reportFatal(error);
  } finally {
    for (const [signal, handler] of signalHandlers) process.off(signal, handler);
    // The escape handlers stay: code given up on may still throw until the process exits.
  }
}
