import { describe, expect, it } from 'vitest';
import { AbortError } from '../../src/index.ts';
import { pull } from '../../tasks/pull.ts';
import { PUSHED_BRANCH, PUSHED_REVISION } from '../../tasks/push.ts';
import { errorOf, fakeContext } from '../helpers/fake-context.ts';

const PUSHED = '1111111111111111111111111111111111111111';
const OTHER = '2222222222222222222222222222222222222222';

describe('pull', () => {
  it('fast-forwards the code dir and checks HEAD is the pushed revision', async () => {
    const c = fakeContext({ shared: new Map([[PUSHED_REVISION, PUSHED]]) });
    c.script('git rev-parse HEAD', { stdout: `${PUSHED}\n` });
    await pull().run(c);
    expect(c.recorder.lines).toEqual([
      'cd /home/alleged/Sites/alleged && { git diff --quiet -- alleged/settings.py || git checkout -- alleged/settings.py; }',
      'cd /home/alleged/Sites/alleged && git pull --ff-only',
      'cd /home/alleged/Sites/alleged && git rev-parse HEAD',
    ]);
    expect(c.recorder.logs).toEqual([`HEAD is ${PUSHED}, the revision pushed`]);
  });

  it('fails naming both SHAs and the likely causes when HEAD is not what was pushed', async () => {
    const c = fakeContext({ shared: new Map([[PUSHED_REVISION, PUSHED], [PUSHED_BRANCH, 'main']]) });
    c.script('git rev-parse HEAD', { stdout: `${OTHER}\n` });
    c.script('git rev-parse --abbrev-ref HEAD', { stdout: 'staging\n' });
    const error = await errorOf(pull().run(c));
    expect(error).toBeInstanceOf(AbortError);
    const message = error.message;
    expect(message).toContain(`/home/alleged/Sites/alleged is at ${OTHER} after git pull, but this run pushed ${PUSHED}`);
    expect(message).toContain('the server has branch staging checked out, but main was pushed');
    expect(message).toMatch(/diverged/);
    expect(message).toMatch(/nothing was pulled/);
  });

  it('without a push in this run, only reports HEAD', async () => {
    const c = fakeContext();
    c.script('git rev-parse HEAD', { stdout: `${OTHER}\n` });
    await pull().run(c);
    expect(c.recorder.logs).toEqual([`HEAD is ${OTHER}`]);
  });

  it("uses the site's codeDir var, quoted", async () => {
    const c = fakeContext({ site: { name: 'alleged', vars: { codeDir: '/srv/my sites/{site}' } } });
    await pull().run(c);
    expect(c.recorder.lines[1]).toBe("cd '/srv/my sites/alleged' && git pull --ff-only");
  });

  it('a failed pull stops the task with the command error', async () => {
    const c = fakeContext();
    c.script('git pull', { exitCode: 128, stderr: 'fatal: Not possible to fast-forward, aborting.' });
    await expect(pull().run(c)).rejects.toThrow('fatal: Not possible to fast-forward, aborting.');
    expect(c.recorder.lines).toHaveLength(2);
  });

  it('puts back the settings.py that copyProductionSettings overwrote, so a commit touching it can be pulled', async () => {
    const c = fakeContext({ site: { name: 'alleged', vars: { settings: 'example_site' } } });
    await pull().run(c);
    expect(c.recorder.lines[0]).toBe('cd /home/alleged/Sites/alleged && { git diff --quiet -- example_site/settings.py || git checkout -- example_site/settings.py; }');
  });

  it('in a dry run says what it would check instead of comparing', async () => {
    const c = fakeContext({ dryRun: true, shared: new Map([[PUSHED_REVISION, PUSHED]]) });
    await pull().run(c);
    expect(c.recorder.lines).toEqual([
      'cd /home/alleged/Sites/alleged && { git diff --quiet -- alleged/settings.py || git checkout -- alleged/settings.py; }',
      'cd /home/alleged/Sites/alleged && git pull --ff-only',
    ]);
    expect(c.recorder.logs).toEqual([`would check that HEAD is ${PUSHED}`]);
  });
});
