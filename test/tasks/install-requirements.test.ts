import { describe, expect, it } from 'vitest';
import { CommandError } from '../../src/index.ts';
import { installRequirements } from '../../tasks/install-requirements.ts';
import { scriptedContext } from '../helpers/task-context.ts';

const HEAD = '1111111111111111111111111111111111111111';
const NEW = '2222222222222222222222222222222222222222';

const CMP = 'cd /home/alleged/Sites/alleged && { if cat REQUIREMENTS 2>/dev/null | cmp -s - /home/alleged/virtualenvs/alleged/.deployfile/requirements.installed; then echo unchanged; fi; }';
const PIP = 'cd /home/alleged/Sites/alleged && . /home/alleged/virtualenvs/alleged/bin/activate && pip install -r REQUIREMENTS';
const SAVE =
  'cd /home/alleged/Sites/alleged && mkdir -p /home/alleged/virtualenvs/alleged/.deployfile && cp REQUIREMENTS /home/alleged/virtualenvs/alleged/.deployfile/requirements.installed';

describe('installRequirements', () => {
  it('is skipped, and says so, when REQUIREMENTS is byte-identical to the last installed copy', async () => {
    const c = scriptedContext();
    c.script('cmp -s -', { stdout: 'unchanged\n' });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP]);
    expect(c.recorder.skips).toEqual(['requirements unchanged since last deploy']);
  });

  it('installs in the virtualenv and saves the copy when the file changed', async () => {
    const c = scriptedContext();
    c.script('cmp -s -', { stdout: '' });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP, SAVE]);
    expect(c.recorder.skips).toEqual([]);
  });

  it('installs when there is no copy yet, without a failed command to show', async () => {
    const c = scriptedContext();
    c.script('cmp -s -', { stdout: '' });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP, SAVE]);
  });

  it('keeps no copy when pip fails, so the next deploy tries again', async () => {
    const c = scriptedContext();
    c.script('cmp -s -', { stdout: '' });
    c.script('pip install', { exitCode: 1, stderr: 'ERROR: No matching distribution found for nope' });
    await expect(installRequirements().run(c)).rejects.toBeInstanceOf(CommandError);
    expect(c.recorder.lines).toEqual([CMP, PIP]);
  });

  it('keeps no copy either when the user skips past the failed pip', async () => {
    const c = scriptedContext({ onFailure: 'skip' });
    c.script('cmp -s -', { stdout: '' });
    c.script('pip install', { exitCode: 1 });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP]);
    expect(c.recorder.warnings).toEqual(['pip install failed; the next deploy will install the requirements again']);
  });

  it('honours the requirements and virtualenv vars and a custom copy location', async () => {
    const c = scriptedContext({ site: { name: 'alleged', vars: { requirements: 'requirements/prod.txt', virtualenv: '~/venvs/{site}' } } });
    c.script('cmp -s -', { stdout: '' });
    await installRequirements({ installedCopy: '~/.deployfile/{site}.requirements' }).run(c);
    expect(c.recorder.lines).toEqual([
      'cd /home/alleged/Sites/alleged && { if cat requirements/prod.txt 2>/dev/null | cmp -s - ~/.deployfile/alleged.requirements; then echo unchanged; fi; }',
      'cd /home/alleged/Sites/alleged && . ~/venvs/alleged/bin/activate && pip install -r requirements/prod.txt',
      'cd /home/alleged/Sites/alleged && mkdir -p ~/.deployfile && cp requirements/prod.txt ~/.deployfile/alleged.requirements',
    ]);
  });

  it('in a dry run shows the install rather than claiming the file is unchanged', async () => {
    const c = scriptedContext({ dryRun: true });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP, SAVE]);
    expect(c.recorder.skips).toEqual([]);
  });

  it('after fetch, installs the new revision\'s requirements before the code changes, from a copy of that revision\'s tree', async () => {
    const c = scriptedContext({ shared: new Map([['deployfile.tasks.fetched:alleged', { head: HEAD, revision: NEW, upstream: 'origin/main' }]]) });
    c.script('cmp -s -', { stdout: '' });
    await installRequirements().run(c);
    const next = '/home/alleged/virtualenvs/alleged/.deployfile/next';
    expect(c.recorder.lines).toEqual([
      `cd /home/alleged/Sites/alleged && { if git show ${NEW}:./REQUIREMENTS 2>/dev/null | cmp -s - /home/alleged/virtualenvs/alleged/.deployfile/requirements.installed; then echo unchanged; fi; }`,
      `cd /home/alleged/Sites/alleged && rm -rf ${next} && mkdir -p ${next} && git archive ${NEW} | tar -x -C ${next}`,
      `cd ${next} && . /home/alleged/virtualenvs/alleged/bin/activate && pip install -r REQUIREMENTS`,
      `cd ${next} && mkdir -p /home/alleged/virtualenvs/alleged/.deployfile && cp REQUIREMENTS /home/alleged/virtualenvs/alleged/.deployfile/requirements.installed`,
      `rm -rf ${next}`,
    ]);
    expect(c.recorder.logs).toEqual(['installing the requirements of 222222222222 before switching the code to it']);
  });

  it('after fetch, compares the new revision\'s file and skips pip when it is unchanged', async () => {
    const c = scriptedContext({ shared: new Map([['deployfile.tasks.fetched:alleged', { head: HEAD, revision: NEW, upstream: 'origin/main' }]]) });
    c.script('cmp -s -', { stdout: 'unchanged\n' });
    await installRequirements().run(c);
    expect(c.recorder.lines).toHaveLength(1);
    expect(c.recorder.skips).toEqual(['requirements unchanged since last deploy']);
  });
});
