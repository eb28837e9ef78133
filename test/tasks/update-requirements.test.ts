import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sh } from '../../src/index.ts';
import { filterFreeze, frozenPackageName, updateRequirements } from '../../tasks/update-requirements.ts';
import { scriptedContext } from '../helpers/task-context.ts';

const FREEZE = [
  'asgiref==3.7.2',
  'Django==4.2.7',
  'django-debug-toolbar==4.2.0',
  'ipython==8.18.1',
  'Pillow==10.1.0',
  'sqlparse==0.4.4',
  'zope.interface==6.1',
  'my_lib @ file:///home/me/src/my_lib',
  '-e git+https://example.com/me/tool.git@0123abc#egg=dev_tool',
  '',
].join('\n');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deployfile-freeze-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('filterFreeze', () => {
  it('drops the named packages whatever their case and -/_/. spelling', () => {
    expect(filterFreeze(FREEZE, ['Django_Debug_Toolbar', 'IPython', 'zope-interface', 'MY-LIB', 'dev-tool'])).toBe(
      ['asgiref==3.7.2', 'Django==4.2.7', 'Pillow==10.1.0', 'sqlparse==0.4.4', ''].join('\n'),
    );
  });

  it('keeps everything when nothing is excluded, and never drops a package by prefix', () => {
    expect(filterFreeze(FREEZE, [])).toBe(FREEZE);
    expect(filterFreeze('django-debug-toolbar==4.2.0\nDjango==4.2.7\n', ['django'])).toBe('django-debug-toolbar==4.2.0\n');
  });

  it('knows the package of each freeze line form', () => {
    expect(frozenPackageName('Django==4.2.7')).toBe('Django');
    expect(frozenPackageName('my_lib @ file:///x')).toBe('my_lib');
    expect(frozenPackageName('-e git+https://x/y.git@1#egg=dev_tool')).toBe('dev_tool');
    expect(frozenPackageName('# comment')).toBeUndefined();
  });
});

describe('updateRequirements', () => {
  it('runs once, locally, and writes pip freeze minus the excluded packages to REQUIREMENTS', async () => {
    const definition = updateRequirements({ exclude: ['django-debug-toolbar', 'ipython'], localDir: dir });
    expect(definition.once).toBe(true);
    const c = scriptedContext({ site: null });
    c.script('pip freeze', { stdout: FREEZE });
    await definition.run(c);
    expect(c.recorder.commands.map((x) => [x.where, x.line])).toEqual([['local', `cd ${dir} && pip freeze`]]);
    const written = readFileSync(join(dir, 'REQUIREMENTS'), 'utf8');
    expect(written).not.toMatch(/debug-toolbar|ipython/);
    expect(written).toContain('Django==4.2.7\n');
    expect(c.recorder.logs).toEqual([`wrote 7 requirements to ${join(dir, 'REQUIREMENTS')}`]);
  });

  it('uses the configured freeze command and file name', async () => {
    const c = scriptedContext({ site: null });
    c.script('-m pip freeze', { stdout: 'Django==4.2.7\n' });
    await updateRequirements({ freezeCommand: sh`${'/opt/py 3/bin/python'} -m pip freeze`, file: 'requirements.txt', localDir: dir }).run(c);
    expect(c.recorder.lines).toEqual([`cd ${dir} && '/opt/py 3/bin/python' -m pip freeze`]);
    expect(readFileSync(join(dir, 'requirements.txt'), 'utf8')).toBe('Django==4.2.7\n');
  });

  it('writes nothing in a dry run', async () => {
    const c = scriptedContext({ site: null, dryRun: true });
    await updateRequirements({ localDir: dir }).run(c);
    expect(existsSync(join(dir, 'REQUIREMENTS'))).toBe(false);
    expect(c.recorder.logs).toEqual([`would write the frozen packages to ${join(dir, 'REQUIREMENTS')}`]);
  });
});
