import { describe, expect, it } from 'vitest';
import { AbortError, sh } from '../../src/index.ts';
import { test as testTask, TESTS_FAILED_QUESTION } from '../../tasks/test.ts';
import { fakeContext } from '../helpers/fake-context.ts';

describe('test', () => {
  it('runs once per run, locally, ./manage.py test with the apps', async () => {
    const definition = testTask({ apps: ['pages', 'blog'] });
    expect(definition.once).toBe(true);
    expect(definition.description).toMatch(/tests/);
    const c = fakeContext({ site: null });
    await definition.run(c);
    expect(c.recorder.commands.map((x) => [x.where, x.line])).toEqual([['local', './manage.py test pages blog']]);
    expect(c.recorder.questions).toEqual([]);
  });

  it('tests every app when none are named, in localDir when given', async () => {
    const c = fakeContext({ site: null });
    await testTask({ localDir: '/work/my project' }).run(c);
    expect(c.recorder.lines).toEqual(["cd '/work/my project' && ./manage.py test"]);
  });

  it('runs a custom test command', async () => {
    const c = fakeContext({ site: null });
    await testTask({ testCommand: sh`pytest -q ${'tests/unit'}` }).run(c);
    expect(c.recorder.lines).toEqual(['pytest -q tests/unit']);
  });

  it('on failure asks whether to continue, and stops the run on no', async () => {
    const c = fakeContext({ site: null, answers: [false] });
    c.script('manage.py test', { exitCode: 1, stderr: 'FAILED (failures=1)' });
    const run = testTask({ apps: ['pages'] }).run(c);
    await expect(run).rejects.toBeInstanceOf(AbortError);
    await expect(run).rejects.toThrow('Tests failed (./manage.py test pages exited with 1); not deploying.');
    expect(c.recorder.questions).toEqual([TESTS_FAILED_QUESTION]);
    expect(TESTS_FAILED_QUESTION).toBe('Tests failed. Continue anyway?');
  });

  it('asks with no as the default answer (what CI without --yes gets)', async () => {
    const c = fakeContext({ site: null });
    c.script('manage.py test', { exitCode: 1 });
    let asked: { default?: boolean } | undefined;
    const confirm = c.confirm.bind(c);
    c.confirm = async (question, options) => {
      asked = options;
      return confirm(question, options);
    };
    await expect(testTask().run(c)).rejects.toBeInstanceOf(AbortError);
    expect(asked).toEqual({ default: false });
  });

  it('goes on with a warning when the answer is yes', async () => {
    const c = fakeContext({ site: null, answers: [true] });
    c.script('manage.py test', { exitCode: 1 });
    await testTask().run(c);
    expect(c.recorder.warnings).toEqual(['Tests failed; going on as asked.']);
  });
});
