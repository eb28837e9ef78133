import { describe, expect, it } from 'vitest';
import { CommandError } from '../../src/index.ts';
import { installRequirements } from '../../tasks/install-requirements.ts';
import { fakeContext } from '../helpers/fake-context.ts';

const CMP = 'cd /home/alleged/Sites/alleged && { if cmp -s REQUIREMENTS /home/alleged/virtualenvs/alleged/.deployfile/requirements.installed; then echo unchanged; fi; }';
const PIP = 'cd /home/alleged/Sites/alleged && . /home/alleged/virtualenvs/alleged/bin/activate && pip install -r REQUIREMENTS';
const SAVE =
  'cd /home/alleged/Sites/alleged && mkdir -p /home/alleged/virtualenvs/alleged/.deployfile && cp REQUIREMENTS /home/alleged/virtualenvs/alleged/.deployfile/requirements.installed';

describe('installRequirements', () => {
  it('is skipped, and says so, when REQUIREMENTS is byte-identical to the last installed copy', async () => {
    const c = fakeContext();
    c.script('cmp -s', { stdout: 'unchanged\n' });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP]);
    expect(c.recorder.skips).toEqual(['requirements unchanged since last deploy']);
  });

  it('installs in the virtualenv and saves the copy when the file changed', async () => {
    const c = fakeContext();
    c.script('cmp -s', { stdout: '' });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP, SAVE]);
    expect(c.recorder.skips).toEqual([]);
  });

  it('installs when there is no copy yet, without a failed command to show', async () => {
    const c = fakeContext();
    c.script('cmp -s', { stdout: '' });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP, SAVE]);
  });

  it('keeps no copy when pip fails, so the next deploy tries again', async () => {
    const c = fakeContext();
    c.script('cmp -s', { stdout: '' });
    c.script('pip install', { exitCode: 1, stderr: 'ERROR: No matching distribution found for nope' });
    await expect(installRequirements().run(c)).rejects.toBeInstanceOf(CommandError);
    expect(c.recorder.lines).toEqual([CMP, PIP]);
  });

  it('keeps no copy either when the user skips past the failed pip', async () => {
    const c = fakeContext({ onFailure: 'skip' });
    c.script('cmp -s', { stdout: '' });
    c.script('pip install', { exitCode: 1 });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP]);
    expect(c.recorder.warnings).toEqual(['pip install failed; the next deploy will install the requirements again']);
  });

  it('honours the requirements and virtualenv vars and a custom copy location', async () => {
    const c = fakeContext({ site: { name: 'alleged', vars: { requirements: 'requirements/prod.txt', virtualenv: '~/venvs/{site}' } } });
    c.script('cmp -s', { stdout: '' });
    await installRequirements({ installedCopy: '~/.deployfile/{site}.requirements' }).run(c);
    expect(c.recorder.lines).toEqual([
      'cd /home/alleged/Sites/alleged && { if cmp -s requirements/prod.txt ~/.deployfile/alleged.requirements; then echo unchanged; fi; }',
      'cd /home/alleged/Sites/alleged && . ~/venvs/alleged/bin/activate && pip install -r requirements/prod.txt',
      'cd /home/alleged/Sites/alleged && mkdir -p ~/.deployfile && cp requirements/prod.txt ~/.deployfile/alleged.requirements',
    ]);
  });

  it('in a dry run shows the install rather than claiming the file is unchanged', async () => {
    const c = fakeContext({ dryRun: true });
    await installRequirements().run(c);
    expect(c.recorder.lines).toEqual([CMP, PIP, SAVE]);
    expect(c.recorder.skips).toEqual([]);
  });
});
