/**
 * `deploy demo` from start to end: build the throwaway world, start what a
 * server would run (SSH, a stand-in uWSGI emperor), deploy, show what the
 * site serves afterwards, and take it all down again.
 *
 * The world comes from the package's `deployfile/demo` entry point (demo/),
 * loaded only here, so the core runtime never carries the demo or its
 * embedded SSH server. The deploy is the built-in `deploy` task of
 * `djangoTasks()`, run by {@link runEngine} like `deploy run deploy`; only
 * the deployfile is built instead of loaded, and the SSH settings point at
 * the demo's own key and known_hosts instead of the operator's ~/.ssh.
 */
import { rmSync } from 'node:fs';
import { relative } from 'node:path';
import { createWorkspace, DEMO_SITE, fetchRevision, prepareVirtualenv, removeWorkspace, startDemoTarget, type DemoTarget } from '../../demo/index.ts';
import { validateDeployfile } from '../config/validate.ts';
import { formatDuration } from '../core/duration.ts';
import { EXIT } from '../core/errors.ts';
import { style, useColor } from '../views/style.ts';
import { runEngine } from './engine.ts';
import { reportFatal } from './report.ts';
import { isInteractive } from './run.ts';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Leave the temp dir in place afterwards. */
  keep: boolean;
  /** Listr view (a TTY at both ends) or plain lines. */
  interactive: boolean;
}

/**
 * `deploy demo [--keep]`: deploys examples/django-site to a throwaway local
 * target and returns the deploy's exit code.
 */
export async function demoCommand(options: Record<string, unknown>): Promise<number> {
  try {
    return await runDemo({ keep: options.keep === true, interactive: isInteractive() });
  } catch (error) {
    // Setting up failed (no git or python3, a full disk): nothing was deployed.
    return reportFatal(error);
  }
}

/**
 * Runs the demo and returns the exit code: the deploy's (0 on success), or 1
 * when the site does not serve the new revision afterwards.
 *
 * @example
 * process.exitCode = await runDemo({ keep: false, interactive: isInteractive() });
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const started = performance.now();
  const out = process.stdout;
  const s = style(useColor(out));
  const say = (text = ''): void => void out.write(`${text}\n`);
  const row = (label: string, text: string): void => say(`  ${s.dim(label.padEnd(14))}${text}`);

  say(s.bold('deploy demo: deploying examples/django-site over real SSH to a throwaway local target'));
  const w = await createWorkspace();
  let target: DemoTarget | undefined;
  // First Ctrl-C: end the deploy and clean up as usual; a second one leaves at once.
  const interrupt = new AbortController();
  const onSigint = (): void => {
    if (interrupt.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write('\nInterrupted: ending the deploy, then cleaning up (Ctrl-C again to exit at once)\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  // process.exit() skips the finally below (a second Ctrl-C; listr2's own SIGINT handler on a TTY exits with 127):
  // the temp dir must not outlive the demo even then.
  const removeOnExit = (): void => {
    if (!options.keep) rmSync(w.root, { recursive: true, force: true });
  };
  process.on('exit', removeOnExit);
  try {
    const python = await prepareVirtualenv(w, (text) => say(s.dim(text)));
    target = await startDemoTarget(w, python);

    // Paths relative to the temp dir: the full ones wrap on an 80-column terminal.
    const at = (path: string): string => relative(w.root, path);
    say(`in ${w.root}:`);
    row('origin', `${at(w.origin)}, a bare git repository`);
    row('working clone', `${at(w.workClone)}, tracking origin/main, with a new commit to ship`);
    row('target', `${DEMO_SITE}@${target.host}:${target.port}, an SSH server inside this process; home ${at(w.home)}`);
    row('stand-ins', 'uWSGI: an emperor inside this process; touching the vassal ini restarts');
    row('', "a Node http server on the vassal's socket that serves the deployed revision");
    for (const fake of python.fakes) row('', fake);
    if (python.reason) row('', `(${python.reason}; with it, these are real)`);
    row('real', python.realDjango ? 'git, SSH, the built-in tasks, and Django: tests, pip, collectstatic' : 'git, SSH, the built-in tasks and the commands they run');
    say(`committed ${w.newRevision} in the working clone`);
    say();

    const deployfile = validateDeployfile(target.deployfile, 'deploy demo: djangoTasks() from deployfile/tasks');
    // No question is ever asked: the demo must not wait for input, so failures abort (as --on-failure abort would).
    const { exitCode } = await runEngine({
      deployfile,
      tasks: ['deploy'],
      sites: deployfile.sites,
      options: { onFailure: 'abort' },
      interactive: options.interactive,
      ssh: {
        home: w.operatorHome,
        configFile: 'none',
        systemConfigFile: null,
        knownHostsFiles: [w.knownHosts],
        globalKnownHostsFiles: [],
        agentSocket: null,
        privateKey: target.privateKey,
      },
      signal: interrupt.signal,
    });
    say();
    if (exitCode !== 0) {
      const what = exitCode === EXIT.interrupted ? 'was interrupted' : 'failed';
      say(s.red(`deploy demo: the deploy ${what} (exit ${exitCode}).`) + (options.keep ? '' : ' Run deploy demo --keep to look at what it left.'));
      return exitCode;
    }

    const served = await fetchRevision(w.socket).catch((error: Error) => `nothing (${error.message})`);
    const ok = served === w.newRevision;
    say(ok ? s.green(`The site now serves revision ${served}, the commit the demo made.`) : s.red(`The site serves ${served}, not the revision just deployed (${w.newRevision}).`));
    // Only paths that outlive the demo: without --keep they are removed below, and the
    // stand-in emperor (with its socket) stops with the demo either way.
    if (options.keep) {
      row('target dir', w.codeDir);
      row('working clone', w.workClone);
      row('uWSGI log', `${w.uwsgiLog} (the stand-in's)`);
    }
    return ok ? exitCode : EXIT.failed;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('exit', removeOnExit);
    await target?.close();
    if (options.keep) {
      say(`Kept ${w.root}: the code, the log and both git clones.`);
      say('The stand-in emperor stopped with the demo, so the socket no longer answers.');
    } else {
      await removeWorkspace(w);
      say(s.dim(`Stopped the SSH server and the stand-in emperor, removed ${w.root} (deploy demo --keep keeps the files).`));
    }
    say(s.dim(`deploy demo took ${formatDuration(performance.now() - started)}`));
  }
}
