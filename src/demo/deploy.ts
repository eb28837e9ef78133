/**
 * The deploy itself: the built-in `deploy` task of `djangoTasks()`, run by
 * the same engine, views and SSH transport as `deploy run deploy`. Only the
 * deployfile is built here instead of loaded, and the SSH settings point at
 * the demo's own key and known_hosts instead of the operator's ~/.ssh.
 */
import { djangoTasks } from '../../tasks/index.ts';
import { validateDeployfile } from '../config/load.ts';
import { EventBus, type EventOf } from '../core/events.ts';
import { execute, newRunId } from '../executor/executor.ts';
import { PolicyPrompter } from '../prompts/prompter.ts';
import { sshTransportFor, type SshSettings } from '../ssh/site-transport.ts';
import { LocalTransport } from '../transports/local.ts';
import { ListrView } from '../views/listr.ts';
import { PlainView } from '../views/plain.ts';
import { useColor } from '../views/style.ts';
import type { PythonSetup } from './python.ts';
import { DEMO_SITE, type Workspace } from './workspace.ts';

/** Where the embedded SSH server listens, and the key it accepts. */
export interface DemoTarget {
  host: '127.0.0.1';
  port: number;
  privateKey: string;
}

/**
 * Runs `deploy` on the demo site and returns the run's exit code.
 * `interactive` picks the view as `deploy run` does: listr on a TTY, plain
 * lines otherwise. No question is ever asked: the demo must not wait for
 * input, so failures abort (as `--on-failure abort` would).
 */
export async function deployDemoSite(w: Workspace, python: PythonSetup, target: DemoTarget, options: { interactive: boolean; signal: AbortSignal }): Promise<number> {
  const deployfile = validateDeployfile(
    {
      sites: { [DEMO_SITE]: { host: target.host, port: target.port } },
      tasks: djangoTasks({
        apps: ['pages'],
        testCommand: python.testCommand,
        localDir: w.workClone,
        codeDir: w.codeDir,
        virtualenv: w.virtualenv,
        settings: 'example_site',
        vassal: w.vassal,
        uwsgiLog: w.uwsgiLog,
      }),
    },
    'deploy demo: djangoTasks() from deployfile/tasks',
  );

  const bus = new EventBus(newRunId());
  const out = process.stdout;
  const listr = options.interactive ? new ListrView(out) : undefined;
  bus.on(listr ? listr.handle : new PlainView({ out, color: useColor(out), showOutput: true }).handle);
  let runEnd: EventOf<'run:end'> | undefined;
  bus.on((event) => {
    if (event.type === 'run:end') runEnd = event;
  });

  const ssh: SshSettings = {
    home: w.operatorHome,
    configFile: 'none',
    systemConfigFile: null,
    knownHostsFiles: [w.knownHosts],
    globalKnownHostsFiles: [],
    agentSocket: null,
    privateKey: target.privateKey,
    onWarning: (site, message) => bus.emit({ type: 'log', site, level: 'warn', message }),
  };
  try {
    const outcome = await execute({
      deployfile,
      tasks: ['deploy'],
      sites: deployfile.sites,
      bus,
      prompter: new PolicyPrompter({ yes: false, onFailure: 'abort' }),
      local: new LocalTransport(),
      transportFor: (site) => sshTransportFor(site, ssh),
      signal: options.signal,
    });
    await listr?.finish(runEnd);
    return outcome.exitCode;
  } catch (error) {
    await listr?.finish(undefined);
    throw error;
  }
}
