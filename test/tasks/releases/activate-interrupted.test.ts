import { describe, expect, it } from 'vitest';
import { InterruptedError } from '../../../src/index.ts';
import { activateRelease } from '../../../tasks/releases/activate.ts';
import { BUILT_PREFIX, type BuiltRelease } from '../../../tasks/releases/build.ts';
import type { ReleaseEvent } from '../../../tasks/releases/record.ts';
import { errorOf, scriptedContext } from '../../helpers/task-context.ts';

const T = '2026-12-01T10:00:00Z';
const OLD = '20261201T100000Z-aaaaaaa';
const NEW: BuiltRelease = { id: '20261201T110000Z-bbbbbbb', dir: '/home/alleged/releases/20261201T110000Z-bbbbbbb', revision: 'b'.repeat(40), venv: '/home/alleged/virtualenvs/alleged@222222222222' };
const history: ReleaseEvent[] = [
  { event: 'built', release: OLD, revision: 'a'.repeat(40), venv: '/home/alleged/virtualenvs/alleged@111111111111', time: T },
  { event: 'activated', release: OLD, time: T },
  { event: 'verified', release: OLD, time: T },
];

describe('activateRelease stopped while it reloads', () => {
  it('Ctrl-C or SIGTERM during the reload is no verdict: the new release is not called bad, not switched back, and the interruption ends the task', async () => {
    const c = scriptedContext({ shared: new Map([[`${BUILT_PREFIX}alleged`, NEW]]) });
    c.script('cat .deployfile/releases.jsonl', { stdout: history.map((e) => JSON.stringify(e)).join('\n') });
    c.invoke = async (task: string) => {
      c.recorder.invoked.push(task);
      throw new InterruptedError('interrupted during: sleep 60', 'sleep 60');
    };
    const error = await errorOf(activateRelease().run(c) as Promise<void>);
    expect(error).toBeInstanceOf(InterruptedError);
    expect(c.recorder.invoked).toEqual(['touchVassalIni']);
    // One switch (to the new release) and its record; no "does not serve", no bad, no way back.
    expect(c.recorder.commands.filter((x) => x.shown.startsWith('switch ')).map((x) => x.shown)).toEqual([
      `switch /home/alleged/Sites/alleged to release ${NEW.id} (code and virtualenv links, one rename each)`,
    ]);
    const record = c.recorder.commands.filter((x) => x.line.includes('>> .deployfile/releases.jsonl')).map((x) => x.line).join('\n');
    expect(record).toContain(`"event":"activated","release":"${NEW.id}"`);
    expect(record).not.toContain('"event":"bad"');
    expect(c.recorder.warnings).toEqual([]);
  });
});
