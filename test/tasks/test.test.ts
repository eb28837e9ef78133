import { describe, expect, it, vi } from 'vitest';
import { AbortError, sh } from '../../src/index.ts';
import { test as testTask, TESTS_FAILED_QUESTION } from '../../tasks/test.ts';
import { TaskContext } from '../../src/runner/task-context.ts';
import { scriptedContext } from '../helpers/task-context.ts';

describe('test', () => {
  it('runs locally, ./manage.py test with the apps, touching no server (no lock needed)', async () => {
    const definition = testTask({ apps: ['pages', 'blog'] });
    expect(definition.lock).toBe(false);
    expect(definition.description).toMatch(/tests/);
    const c = scriptedContext({ site: null });
    await definition.run(c);
    expect(c.recorder.commands.map((x) => [x.where, x.line])).toEqual([['local', './manage.py test pages blog']]);
    expect(c.recorder.questions).toEqual([]);
  });

  it('tests every app when none are named, in localDir when given', async () => {
    const c = scriptedContext({ site: null });
    await testTask({ localDir: '/work/my project' }).run(c);
    expect(c.recorder.lines).toEqual(["cd '/work/my project' && ./manage.py test"]);
  });

  it('runs a custom test command', async () => {
    const c = scriptedContext({ site: null });
    await testTask({ testCommand: sh`pytest -q ${'tests/unit'}` }).run(c);
    expect(c.recorder.lines).toEqual(['pytest -q tests/unit']);
  });

  it('on failure asks whether to continue, and stops the run on no', async () => {
    const c = scriptedContext({ site: null, answers: [false] });
    c.script('manage.py test', { exitCode: 1, stderr: 'FAILED (failures=1)' });
    const run = testTask({ apps: ['pages'] }).run(c);
    await expect(run).rejects.toBeInstanceOf(AbortError);
    await expect(run).rejects.toThrow('Tests failed (./manage.py test pages exited with 1); not deploying.');
    expect(c.recorder.questions).toEqual([TESTS_FAILED_QUESTION]);
    expect(TESTS_FAILED_QUESTION).toBe('Tests failed. Continue anyway?');
  });

  it('asks with no as the default answer (what CI without --yes gets)', async () => {
    const c = scriptedContext({ site: null });
    c.script('manage.py test', { exitCode: 1 });
    // The question is asked in the run-once lane, a context of its own: watch every task context's confirm.
    const confirm = vi.spyOn(TaskContext.prototype, 'confirm');
    try {
      await expect(testTask().run(c)).rejects.toBeInstanceOf(AbortError);
      expect(confirm.mock.calls).toEqual([[TESTS_FAILED_QUESTION, { default: false }]]);
    } finally {
      confirm.mockRestore();
    }
  });

  it('runs once per working copy for the sites of one run, and names the working copy when it asks', async () => {
    const definition = testTask({ localDir: (site) => (site.name === 'charlie' ? '/src/charlie' : '/src/shop') });
    const alleged = scriptedContext({ site: { name: 'alleged' }, answers: [true, false] });
    alleged.script('cd /src/charlie', { exitCode: 1 });
    const [bravo, charlie] = ['bravo', 'charlie'].map((name) => scriptedContext({ site: { name }, shared: alleged.shared, recorder: alleged.recorder }));
    const runs = await Promise.allSettled([alleged, bravo, charlie].map((c) => definition.run(c!)));
    expect(alleged.recorder.lines.sort()).toEqual(['cd /src/charlie && ./manage.py test', 'cd /src/shop && ./manage.py test']);
    expect(alleged.recorder.questions).toEqual(['Tests failed in /src/charlie. Continue anyway?']);
    expect(runs.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
  });

  it('goes on with a warning when the answer is yes', async () => {
    const c = scriptedContext({ site: null, answers: [true] });
    c.script('manage.py test', { exitCode: 1 });
    await testTask().run(c);
    expect(c.recorder.warnings).toEqual(['Tests failed; going on as asked.']);
  });
});
