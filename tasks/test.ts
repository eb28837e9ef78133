import { sh, task, type CommandInput, type Context, type TaskDefinition } from '../src/index.ts';
import { displayDir, localDirOf, type SiteOptions } from './options.ts';

/** Options of {@link test}. */
export interface TestOptions extends Pick<SiteOptions, 'localDir'> {
  /** Django apps to test; default none, meaning all of them. */
  apps?: string[];
  /** The whole test command instead of `./manage.py test <apps>`. */
  testCommand?: CommandInput;
}

/** The question `test` asks when the tests fail (naming the working copy when it is not the current directory). */
export const TESTS_FAILED_QUESTION = 'Tests failed. Continue anyway?';

/**
 * Run the project's tests on the operator's machine, once per local working
 * copy (see `localDir`), however many sites deploy it: sites that share a
 * working copy wait for one run of its tests. A failure asks whether to go
 * on (no by default, and no without a TTY unless --yes); a no stops every
 * site deployed from that working copy, and only those.
 *
 * @example
 * tasks: { test: test({ apps: ['pages'] }) } // ./manage.py test pages
 */
export function test(options: TestOptions = {}): TaskDefinition {
  const apps = options.apps ?? [];
  const command = options.testCommand ?? (apps.length > 0 ? sh`./manage.py test ${apps}` : sh`./manage.py test`);
  return task({
    description: 'Run the tests locally, once per working copy; ask before going on if they fail',
    // Nothing here touches a server: no lock, no connection.
    lock: false,
    run: async (c) => {
      const dir = localDirOf(c, options);
      await c.runOnce(`deployfile.tasks.test:${dir}`, `test ${displayDir(dir)}`, (local) => runTests(local, dir, command));
    },
  });
}

async function runTests(c: Context, dir: string, command: CommandInput): Promise<void> {
  // c.local already runs where deploy runs: no cd to show for the usual case.
  const here = dir === process.cwd() ? c : c.cd(dir);
  const result = await here.warnOnly().local(command);
  if (result.ok) return;
  const where = displayDir(dir);
  const question = where === '.' ? TESTS_FAILED_QUESTION : TESTS_FAILED_QUESTION.replace('Tests failed.', `Tests failed in ${where}.`);
  if (!(await c.confirm(question, { default: false }))) {
    c.abort(`Tests failed${where === '.' ? '' : ` in ${where}`} (${result.command} exited with ${result.exitCode ?? result.signal ?? 'an error'}); not deploying.`);
  }
  c.warn('Tests failed; going on as asked.');
}
