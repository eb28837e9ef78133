import { sh, task, type CommandInput, type TaskDefinition } from '../src/index.ts';

/** Options of {@link test}. */
export interface TestOptions {
  /** Django apps to test; default none, meaning all of them. */
  apps?: string[];
  /** The whole test command instead of `./manage.py test <apps>`. */
  testCommand?: CommandInput;
  /** The local checkout to run the tests in; default the current directory. */
  localDir?: string;
}

/** The question `test` asks when the tests fail. */
export const TESTS_FAILED_QUESTION = 'Tests failed. Continue anyway?';

/**
 * Run the project's tests on the operator's machine, once per run. A failure
 * asks whether to go on (no by default, and no without a TTY unless --yes)
 * and stops the run on no.
 *
 * @example
 * tasks: { test: test({ apps: ['pages'] }) } // ./manage.py test pages
 */
export function test(options: TestOptions = {}): TaskDefinition {
  const apps = options.apps ?? [];
  const command = options.testCommand ?? (apps.length > 0 ? sh`./manage.py test ${apps}` : sh`./manage.py test`);
  return task({
    description: 'Run the tests locally; ask before going on if they fail',
    once: true,
    run: async (c) => {
      const here = options.localDir ? c.cd(options.localDir) : c;
      const result = await here.warnOnly().local(command);
      if (result.ok) return;
      if (!(await c.confirm(TESTS_FAILED_QUESTION, { default: false }))) {
        c.abort(`Tests failed (${result.command} exited with ${result.exitCode ?? result.signal ?? 'an error'}); not deploying.`);
      }
      c.warn('Tests failed; going on as asked.');
    },
  });
}
