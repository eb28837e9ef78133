import { describe, expect, it } from 'vitest';
import { AbortError } from '../../../src/index.ts';
import { activateRelease } from '../../../tasks/releases/activate.ts';
import { BUILT_PREFIX, type BuiltRelease } from '../../../tasks/releases/build.ts';
import type { ReleaseEvent } from '../../../tasks/releases/record.ts';
import { AppNotBackError } from '../../../tasks/touch-vassal-ini.ts';
import { errorOf, scriptedContext, type ScriptedContext } from '../../helpers/task-context.ts';

const T = '2026-12-01T10:00:00Z';
const OLD = '20261201T100000Z-aaaaaaa';
const NEW: BuiltRelease = { id: '20261201T110000Z-bbbbbbb', dir: '/home/alleged/releases/20261201T110000Z-bbbbbbb', revision: 'b'.repeat(40), venv: '/home/alleged/virtualenvs/alleged@222222222222' };
const history: ReleaseEvent[] = [
  { event: 'built', release: OLD, revision: 'a'.repeat(40), venv: '/home/alleged/virtualenvs/alleged@111111111111', time: T },
  { event: 'activated', release: OLD, time: T },
  { event: 'verified', release: OLD, time: T },
];

/** A site whose record holds `events`, with NEW built in this run; `reloads` are touchVassalIni's verdicts in order. */
function site(events: ReleaseEvent[], reloads: Array<'ok' | 'fails'>, options = {}): { c: ScriptedContext; appended: () => string[]; run: () => Promise<void> } {
  const c = scriptedContext({ shared: new Map([[`${BUILT_PREFIX}alleged`, NEW]]) });
  c.script('cat .deployfile/releases.jsonl', { stdout: events.map((e) => JSON.stringify(e)).join('\n') });
  c.invoke = async (task: string) => {
    c.recorder.invoked.push(task);
    if (reloads.shift() === 'fails') {
      throw new AppNotBackError('alleged: the new code does not load: AttributeError: no application\ndetail', 'alleged', 'no app', [], undefined, 2.1, 'no-app');
    }
  };
  const appended = () => c.recorder.commands.filter((x) => x.line.includes('>> .deployfile/releases.jsonl')).map((x) => x.line);
  return { c, appended, run: () => activateRelease(options).run(c) as Promise<void> };
}

const switches = (c: ScriptedContext) => c.recorder.commands.filter((x) => x.shown.startsWith('switch ')).map((x) => x.shown);

describe('activateRelease', () => {
  it('switches both links in one script, reloads, and records the release as verified', async () => {
    const { c, appended, run } = site(history, ['ok']);
    await run();
    expect(switches(c)).toEqual([`switch /home/alleged/Sites/alleged to release ${NEW.id} (code and virtualenv links, one rename each)`]);
    const script = c.recorder.commands.find((x) => x.shown.startsWith('switch '))?.line ?? '';
    expect(script).toMatch(/sh -c 'trap \S+ INT TERM HUP; /);
    expect(script).toContain('os.replace');
    expect(appended().join('\n')).toMatch(/"event":"activated","release":"20261201T110000Z-bbbbbbb","previous":"20261201T100000Z-aaaaaaa"[\s\S]*"event":"verified","release":"20261201T110000Z-bbbbbbb"/);
    expect(c.recorder.reports).toEqual([`release ${NEW.id} (was ${OLD})`]);
  });

  it('health gate: a release that does not serve is switched back, the previous one reloaded and verified, the new one recorded bad, exit 1 naming both', async () => {
    const { c, appended, run } = site(history, ['fails', 'ok']);
    const error = await errorOf(run());
    expect(error).toBeInstanceOf(AbortError);
    expect(error.message).toMatch(new RegExp(`^alleged: release ${NEW.id} does not serve, so ${OLD} was put back and serves again; the site served errors for at most [\\d.]+s`));
    expect(error.message).toContain('AttributeError: no application');
    expect(switches(c)).toEqual([
      `switch /home/alleged/Sites/alleged to release ${NEW.id} (code and virtualenv links, one rename each)`,
      `switch /home/alleged/Sites/alleged to release ${OLD} (code and virtualenv links, one rename each)`,
    ]);
    // The previous release comes back with its own virtualenv.
    expect(c.recorder.commands.filter((x) => x.shown.startsWith('switch '))[1]?.line).toContain('alleged@111111111111');
    const record = appended().join('\n');
    expect(record).toMatch(/"event":"bad","release":"20261201T110000Z-bbbbbbb","reason":"alleged: the new code does not load: AttributeError: no application"/);
    expect(record).toMatch(/"event":"verified","release":"20261201T100000Z-aaaaaaa"/);
    expect(c.recorder.invoked).toEqual(['touchVassalIni', 'touchVassalIni']);
  });

  it('says so when the previous release, put back, does not serve either', async () => {
    const { run } = site(history, ['fails', 'fails']);
    const error = await errorOf(run());
    expect(error.message).toContain(`and the previous release ${OLD}, put back, does not serve either`);
  });

  it('with the gate off, leaves the new release in place, records it bad and fails with its explanation', async () => {
    const { c, run } = site(history, ['fails'], { healthGate: false });
    const error = await errorOf(run());
    expect(error).toBeInstanceOf(AppNotBackError);
    expect(switches(c)).toHaveLength(1);
  });

  it('the first release of a site has nothing to go back to, and says so', async () => {
    const { c, run } = site([], ['fails']);
    await expect(run()).rejects.toBeInstanceOf(AppNotBackError);
    expect(c.recorder.warnings).toEqual(['no previous release to put back: this is the first release of the site']);
  });

  it('refuses without a release built in this run', async () => {
    const c = scriptedContext();
    await expect(activateRelease().run(c)).rejects.toThrow(/no release was built for this site in this run/);
  });
});
