import { describe, expect, it } from 'vitest';
import { currentRelease, migrationsBack, parseMigrationPlan, parseRecord, releaseId, releasesToRemove, releaseStates, rollbackTarget, type ReleaseEvent } from '../../../tasks/releases/record.ts';

const T = '2026-12-01T10:00:00Z';
const built = (release: string): ReleaseEvent => ({ event: 'built', release, revision: `${release}rev`, venv: `/v/${release}`, time: T });
const activated = (release: string): ReleaseEvent => ({ event: 'activated', release, time: T });
const verified = (release: string): ReleaseEvent => ({ event: 'verified', release, time: T });

describe('the releases record', () => {
  it('replays to states: the live one current, earlier ones that served healthy, a failed one bad', () => {
    const events = [built('r1'), activated('r1'), verified('r1'), built('r2'), activated('r2'), verified('r2'), built('r3'), activated('r3'),
      { event: 'bad', release: 'r3', time: T, reason: 'AttributeError' } as ReleaseEvent, activated('r2'), verified('r2')];
    const states = releaseStates(events);
    expect(states.map((r) => [r.id, r.state])).toEqual([['r1', 'healthy'], ['r2', 'current'], ['r3', 'bad']]);
    expect(states[2]?.reason).toBe('AttributeError');
    expect(currentRelease(states)?.id).toBe('r2');
  });

  it('goes back to the newest healthy release before the current one, never a bad one or one that never served', () => {
    const events = [built('r1'), activated('r1'), verified('r1'), built('r2'), activated('r2'), { event: 'bad', release: 'r2', time: T, reason: 'x' } as ReleaseEvent,
      activated('r1'), built('r3'), activated('r3'), built('r4'), activated('r4'), verified('r4')];
    const states = releaseStates(events);
    expect(states.map((r) => r.state)).toEqual(['healthy', 'bad', 'built', 'current']);
    expect(rollbackTarget(states)?.id).toBe('r1');
  });

  it('keeps the newest N, the current one and the newest healthy one', () => {
    const events: ReleaseEvent[] = [];
    for (const r of ['r1', 'r2', 'r3', 'r4', 'r5']) events.push(built(r), activated(r), verified(r));
    events.push(built('r6'), activated('r6'), { event: 'bad', release: 'r6', time: T, reason: 'x' }, activated('r5'), verified('r5'));
    events.push(built('r7'));
    const remove = releasesToRemove(releaseStates(events), 2);
    // r6 and r7 are the newest two; r5 is current; r4, the newest healthy one, is what a rollback goes back to.
    expect(remove.map((r) => r.id)).toEqual(['r1', 'r2', 'r3']);
  });

  it('skips a half-written last line instead of refusing the record', () => {
    const text = `${JSON.stringify(built('r1'))}\n${JSON.stringify(activated('r1'))}\n{"event":"verif`;
    expect(parseRecord(text).map((e) => e.event)).toEqual(['built', 'activated']);
  });

  it('names a release by UTC time and short revision, so ids sort by time', () => {
    expect(releaseId('bf23819aabbcc', new Date('2026-12-01T10:15:33.456Z'))).toBe('20261201T101533Z-bf23819');
  });
});

describe('migration states', () => {
  it('reads the latest applied migration per app from showmigrations --plan', () => {
    const plan = '[X]  contenttypes.0001_initial\n[X]  pages.0001_initial\n[X]  pages.0002_note_done\n[ ]  pages.0003_later\n';
    expect(parseMigrationPlan(plan)).toEqual({ contenttypes: '0001_initial', pages: '0002_note_done' });
  });

  it('says what to migrate back: each app that differs, zero for one the target never migrated, and apps only the target knows', () => {
    expect(migrationsBack({ pages: '0002_note_done', blog: '0001_initial', auth: '0012_x' }, { pages: '0001_initial', auth: '0012_x', shop: '0001_initial' })).toEqual({
      steps: [
        { app: 'pages', to: '0001_initial' },
        { app: 'blog', to: 'zero' },
      ],
      unknown: ['shop'],
    });
    expect(migrationsBack({ pages: '0001_initial' }, { pages: '0001_initial' })).toEqual({ steps: [], unknown: [] });
  });

  it('a release keeps the migration state recorded for it', () => {
    const states = releaseStates([built('r1'), { event: 'migrations', release: 'r1', time: T, state: { pages: '0001_initial' } }]);
    expect(states[0]?.migrations).toEqual({ pages: '0001_initial' });
  });
});
