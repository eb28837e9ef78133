import { siteTarget } from '../core/target.ts';
import { EventBus, type DeployEvent, type EventOf } from '../core/events.ts';
import { Redactor } from '../core/secret.ts';
import type { LoadedDeployfile, ResolvedSite } from '../config/load.ts';
import { execute, newRunId, type RunOutcome } from '../executor/executor.ts';
import type { Escapes } from '../executor/escapes.ts';
import type { Prompter } from '../core/prompter.ts';
import { inquirerAsker, queuedAsker } from '../prompts/asker.ts';
import { InteractivePrompter } from '../prompts/interactive.ts';
import { PolicyPrompter } from '../prompts/policy.ts';
import { createQuestionQueue } from '../prompts/queue.ts';
import { DryRunTransport } from '../transports/dry-run.ts';
import { LocalTransport } from '../transports/local.ts';
import { sshRunSettings } from '../ssh/run-settings.ts';
import { sshTransportFor, type SshSettings } from '../ssh/site-transport.ts';
import type { ListrView } from '../views/listr.ts';
import { PlainView } from '../views/plain.ts';
import { useColor } from '../views/style.ts';
import type { DeployRunOptions } from './options.ts';

/** What a command hands to {@link runEngine}: the run's work, how to show it, and how to stop it. */
export interface EngineRun {
  deployfile: LoadedDeployfile;
  /** Task names, run in this order on every site. */
  tasks: string[];
  sites: ResolvedSite[];
  /** `deploy run`'s parsed flags; a command without some of them gets `deploy run`'s defaults. */
  options: Partial<DeployRunOptions>;
  /** Someone is at the terminal (and not --json): the listr view, and questions are asked. */
  interactive: boolean;
  /** Replace what ssh config and the environment give; `deploy demo` points at its own key and known_hosts. */
  ssh?: Partial<SshSettings>;
  /** Aborted by the command's signal handling (Ctrl-C, SIGTERM, SIGHUP). */
  signal: AbortSignal;
  escapes?: Escapes;
  /** Values tasks find in `c.shared` (e.g. `deploy rollback --to`). */
  shared?: Record<string, unknown>;
  /**
   * The command prints its own document on stdout (`deploy plan --json`):
   * the human view goes to stderr and no JSON events are written.
   */
  documentOnStdout?: boolean;
  /** Sees every event after the views, e.g. to collect each site's outcome. */
  observe?: (event: DeployEvent) => void;
}

/**
 * Whether a run draws the live view (listr2): someone at the terminal and no
 * --verbose. Its rows show a site's last lines only while the site runs, so a
 * command that reports after the run (deploy plan) prints its details again.
 */
export function drawsLiveView(interactive: boolean, verbose: boolean | undefined): boolean {
  return interactive && !verbose;
}

/**
 * The one composition of engine, views, prompter and transports that every
 * command running tasks shares (`deploy run`, `rollback`, `releases`,
 * `demo`): the views on the event bus (JSON lines with --json, listr on a
 * TTY, plain lines otherwise), one question queue through the active view,
 * the SSH settings, then the executor. Returns the run's outcome once the
 * view has drawn its last frame; process-wide concerns (signal handlers,
 * escaped errors, exit codes) stay with the command.
 *
 * @example
 * const outcome = await runEngine({ deployfile, tasks: ['deploy'], sites, options, interactive: isInteractive(), signal });
 * return outcome.exitCode;
 */
export async function runEngine(run: EngineRun): Promise<RunOutcome> {
  const { options, interactive } = run;
  const bus = new EventBus(newRunId());
  const human = options.json || run.documentOnStdout ? process.stderr : process.stdout;
  let listr: ListrView | undefined;
  if (options.json && !run.documentOnStdout) {
    // The JSON view checks each event against its zod schema: only --json loads zod.
    const { JsonView } = await import('../views/json.ts');
    bus.on(new JsonView(process.stdout).handle);
  }
  if (drawsLiveView(interactive, options.verbose)) {
    // listr2 only where it draws: a run in CI or a pipe never loads it.
    const { ListrView } = await import('../views/listr.ts');
    listr = new ListrView(process.stdout);
    bus.on(listr.handle);
  } else {
    bus.on(new PlainView({ out: human, color: useColor(human), showOutput: true }).handle);
  }
  let runEnd: EventOf<'run:end'> | undefined;
  bus.on((event) => {
    if (event.type === 'run:end') runEnd = event;
  });
  if (run.observe) bus.on(run.observe);

  // Every question, whoever asks it (prompter, host keys, passphrases, sudo password), takes its turn
  // in the run's one queue; the active view only shows it.
  const questions = createQuestionQueue();
  const asker = queuedAsker(listr ? new (await import('../views/listr-questions.ts')).ListrQuestions(listr) : inquirerAsker, questions);
  let prompter: Prompter;
  if (interactive && options.onFailure === undefined) {
    prompter = new InteractivePrompter(asker, { yes: options.yes ?? false, queue: questions });
  } else {
    prompter = new PolicyPrompter({ yes: options.yes ?? false, onFailure: options.onFailure ?? 'abort' });
  }

  try {
    const redactor = new Redactor();
    // Host key questions go to the terminal itself, never to the prompter: --yes must not accept a host key.
    const settings = sshRunSettings({
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
    const ssh: SshSettings = { ...settings.ssh, ...run.ssh };
    const outcome = await execute({
      deployfile: run.deployfile,
      tasks: run.tasks,
      sites: run.sites,
      bus,
      prompter,
      local: options.dryRun ? new DryRunTransport('local') : new LocalTransport(),
      transportFor: (site) => (options.dryRun ? new DryRunTransport(siteTarget(site)) : sshTransportFor(site, ssh)),
      dryRun: options.dryRun,
      parallel: options.parallel,
      batch: options.batch,
      maxFailures: options.maxFailures,
      signal: run.signal,
      redactor,
      sudoPassword: settings.sudoPassword,
      defaultTimeoutMs: options.timeout,
      deadlineMs: options.deadline,
      escapes: run.escapes,
      shared: run.shared,
    });
    await listr?.finish(runEnd);
    return outcome;
  } catch (error) {
    await listr?.finish(undefined);
    throw error;
  }
}
