import { EventBus, type EventOf } from '../core/events.ts';
import { EXIT } from '../core/errors.ts';
import { Redactor } from '../core/secret.ts';
import { findDeployfile, loadDeployfile } from '../config/load.ts';
import { execute, newRunId } from '../executor/executor.ts';
import { Escapes } from '../executor/escapes.ts';
import { describeStop, signalExitCode, signalStop, STOP_SIGNALS, type StopSignal } from '../executor/stop.ts';
import { checkTasks, selectSites } from '../executor/select.ts';
import type { Prompter } from '../core/prompter.ts';
import { inquirerAsker, queuedAsker } from '../prompts/asker.ts';
import { InteractivePrompter } from '../prompts/interactive.ts';
import { PolicyPrompter } from '../prompts/policy.ts';
import { createQuestionQueue } from '../prompts/queue.ts';
import { someoneAtTerminal } from '../prompts/terminal.ts';
import { DryRunTransport } from '../transports/dry-run.ts';
import { LocalTransport } from '../transports/local.ts';
import { sshRunSettings } from '../ssh/run-settings.ts';
import { sshTransportFor } from '../ssh/site-transport.ts';
import { JsonView } from '../views/json.ts';
import { ListrView } from '../views/listr.ts';
import { ListrQuestions } from '../views/listr-questions.ts';
import { PlainView } from '../views/plain.ts';
import { useColor } from '../views/style.ts';
import { parseDeployRunOptions, splitList } from './options.ts';
import { reportFatal } from './report.ts';
import { blockingStdio } from './stdio.ts';

/**
 * Someone is at the keyboard for `deploy run`: stdin and stdout are a terminal
 * and no CI says otherwise. Kept for `deploy demo`; it is {@link someoneAtTerminal}.
 */
export function isInteractive(): boolean {
  return someoneAtTerminal(process.stdout);
}

/**
 * `deploy run <task...>` (and `deploy rollback`, `deploy releases`, which run a
 * built-in task): composes options, views, prompter and engine once; returns the
 * exit code. Not the runner's `runCommand`, which runs one command of a task.
 *
 * @example process.exitCode = await deployRun(['deploy'], { site: 'web1' });
 */
export async function deployRun(tasks: string[], flags: Record<string, unknown>, shared?: Record<string, unknown>): Promise<number> {
  let options;
  let deployfile;
  let sites;
  try {
    options = parseDeployRunOptions(flags);
    deployfile = await loadDeployfile(findDeployfile(options.file));
    checkTasks(deployfile, tasks);
    sites = selectSites(deployfile, { site: splitList(options.site), exclude: splitList(options.exclude), shard: options.shard });
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
  const interactive = someoneAtTerminal(process.stdout) && !options.json;
  const bus = new EventBus(newRunId());
  const human = options.json ? process.stderr : process.stdout;
  let listr: ListrView | undefined;
  if (options.json) bus.on(new JsonView(process.stdout).handle);
  if (interactive && !options.verbose) {
    listr = new ListrView(process.stdout);
    bus.on(listr.handle);
  } else {
    bus.on(new PlainView({ out: human, color: useColor(human), showOutput: true }).handle);
  }
  let runEnd: EventOf<'run:end'> | undefined;
  bus.on((event) => {
    if (event.type === 'run:end') runEnd = event;
  });

  const interrupt = new AbortController();
  // Every question, whoever asks it (prompter, host keys, passphrases, sudo password), takes its turn
  // in the run's one queue; the active view only shows it.
  const questions = createQuestionQueue();
  const asker = queuedAsker(listr ? new ListrQuestions(listr) : inquirerAsker, questions);
  let prompter: Prompter;
  if (interactive && options.onFailure === undefined) {
    prompter = new InteractivePrompter(asker, { yes: options.yes, queue: questions });
  } else {
    prompter = new PolicyPrompter({ yes: options.yes, onFailure: options.onFailure ?? 'abort' });
  }

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

  const redactor = new Redactor();
  // Host key questions go to the terminal itself, never to the prompter: --yes must not accept a host key.
  const { ssh, sudoPassword } = sshRunSettings({
    configFile: options.sshConfig,
    acceptNewHostKeys: options.acceptNewHostKeys,
    asker: interactive
      ? {
          confirm: (site, message, defaultAnswer) => asker.confirm(site, message, defaultAnswer),
          secret: (message) => asker.secret(null, message),
        }
      : undefined,
    questions,
    redactor,
    onWarning: (site, message) => bus.emit({ type: 'log', site, level: 'warn', message }),
  });
  try {
    const outcome = await execute({
      deployfile,
      tasks,
      sites,
      bus,
      prompter,
      local: options.dryRun ? new DryRunTransport('local') : new LocalTransport(),
      transportFor: (site) => (options.dryRun ? new DryRunTransport(`${site.user}@${site.host}:${site.port ?? 22}`) : sshTransportFor(site, ssh)),
      dryRun: options.dryRun,
      parallel: options.parallel,
      batch: options.batch,
      maxFailures: options.maxFailures,
      signal: interrupt.signal,
      redactor,
      sudoPassword,
      defaultTimeoutMs: options.timeout,
      deadlineMs: options.deadline,
      escapes,
      shared,
    });
    await listr?.finish(runEnd);
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
    await listr?.finish(undefined);
    return reportFatal(error);
  } finally {
    for (const [signal, handler] of signalHandlers) process.off(signal, handler);
    // The escape handlers stay: code given up on may still throw until the process exits.
  }
}
