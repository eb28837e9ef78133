import { describe, expect, it } from 'vitest';
import { switchTo } from '../../../tasks/releases/activate.ts';
import { releasePaths } from '../../../tasks/releases/layout.ts';
import { scriptedContext } from '../../helpers/task-context.ts';

describe('switchTo: the links and the record change in one step', () => {
  it('appends the record\'s events in the same uninterruptible script as the renames, after them, so a deploy killed the moment the switch is done leaves a record that names the linked release', async () => {
    const c = scriptedContext();
    const paths = releasePaths(c, {});
    const target = { id: '20261201T110000Z-bbbbbbb', dir: '/home/alleged/releases/20261201T110000Z-bbbbbbb', venv: '/home/alleged/virtualenvs/alleged@222222222222' };
    await switchTo(c, paths, target, { event: 'activated', release: target.id, previous: '20261201T100000Z-aaaaaaa' });
    expect(c.recorder.lines).toHaveLength(1);
    const line = c.recorder.lines[0]!;
    expect(line).toMatch(/^sh -c 'trap \S+ INT TERM HUP; /);
    const renamed = line.lastIndexOf('os.replace');
    const recorded = line.indexOf('>> .deployfile/releases.jsonl');
    expect(renamed).toBeGreaterThan(0);
    expect(recorded).toBeGreaterThan(renamed);
    expect(line).toContain('"event":"activated","release":"20261201T110000Z-bbbbbbb","previous":"20261201T100000Z-aaaaaaa"');
  });

  it('without events (a dry run) it only switches', async () => {
    const c = scriptedContext();
    await switchTo(c, releasePaths(c, {}), { id: 'x', dir: '/home/alleged/releases/x', venv: '/home/alleged/virtualenvs/alleged@1' });
    expect(c.recorder.lines[0]).not.toContain('releases.jsonl');
  });
});
