import { EventBus, type EventOf } from '../core/events.ts';
import { EXIT } from '../core/errors.ts';
import { Redactor } from '../core/secret.ts';
import { findDeployfile, loadDeployfile } from '../config/load.ts';
import { execute, newRunId } from '../executor/executor.ts';
import { checkTasks, selectSites } from '../executor/select.ts';
import { InteractivePrompter, inquirerAsker, serialAsker } from '../prompts/interactive.ts';
import { PolicyPrompter, type Prompter } from '../prompts/prompter.ts';
import { DryRunTransport } from '../transports/dry-run.ts';
import { LocalTransport } from '../transports/local.ts';
import { sshRunSettings } from '../ssh/run-settings.ts';
import { sshTransportFor } from '../ssh/site-transport.ts';
import { JsonView } from '../views/json.ts';
import { ListrView } from '../views/listr.ts';
import { PlainView } from '../views/plain.ts';
import { useColor } from '../views/style.ts';
import { parseRunOptions, splitList } from './options.ts';
import { reportFatal } from './report.ts';
import { blockingStdio } from './stdio.ts';

/** Someone is at the keyboard: both ends are a terminal and no CI says otherwise. */
export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stdout.isTTY) && !process.env.CI;
}

/** `deploy run <task...>`: returns the exit code. */
export async function runCommand(tasks: string[], flags: Record<string, unknown>): Promise<number> {
  let options;
  let deployfile;
  let sites;
  try {
    options = parseRunOptions(flags);
    deployfile = await loadDeployfile(findDeployfile(options.file));
    checkTasks(deployfile, tasks);
    sites = selectSites(deployfile, { site: splitList(options.site), exclude: splitList(options.exclude), shard: options.shard });
  } catch (error) {
    return reportFatal(error);
  }
  if (options.shard && sites.length === 0) {
    // A CI matrix may have more runners than this slice has sites; run-once tasks would run for nothing.
    process.stderr.write(`deploy: shard ${options.shard.index}/${options.shard.count} holds none of the selected sites; nothing to do\n`);
    return EXIT.ok;
  }

  // Output streams at the reader's pace instead of piling up in memory (see stdio.ts).
  blockingStdio();
  const interactive = isInteractive() && !options.json;
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
  // Every question, whoever asks it, goes through one queue and the active view.
  const asker = serialAsker(listr ?? inquirerAsker);
  let prompter: Prompter;
  if (interactive && options.onFailure === undefined) {
    prompter = new InteractivePrompter(asker, { yes: options.yes });
  } else {
    prompter = new PolicyPrompter({ yes: options.yes, onFailure: options.onFailure ?? 'abort' });
  }

  // First Ctrl-C: stop starting commands and end the running ones; second: leave now.
  let interrupts = 0;
  const onSigint = (): void => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write('\nInterrupted: ending running commands (Ctrl-C again to exit at once)\n');
      interrupt.abort();
    } else {
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', onSigint);

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
    });
    await listr?.finish(runEnd);
    return outcome.exitCode;
  } catch (error) {
    await listr?.finish(undefined);
    return reportFatal(error);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
