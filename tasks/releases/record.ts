/**
 * The server-side record of a site's releases: JSON lines appended to
 * `~/.deployfile/releases.jsonl`, one event per line. It is the truth about
 * releases (which is current, which served, which failed, what a rollback
 * goes back to): never directory mtimes, which a copy or a `touch` changes.
 * Reading it is pure: {@link releaseStates} replays the events.
 */

/** Where the record lives, relative to the site user's home. */
export const RECORD_PATH = '.deployfile/releases.jsonl';

/** One line of the record. */
export type ReleaseEvent =
  | { event: 'built'; release: string; revision: string; venv: string; time: string; operator?: string; converted?: boolean }
  | { event: 'activated'; release: string; previous?: string; time: string; operator?: string }
  | { event: 'verified'; release: string; time: string; seconds?: number }
  | { event: 'bad'; release: string; time: string; reason: string }
  | { event: 'rolled-back'; release: string; to: string; time: string; operator?: string; message?: string }
  | { event: 'removed'; release: string; time: string }
  | { event: 'migrations'; release: string; time: string; state: MigrationState };

/** The latest applied migration of each app (`pages: '0002_note_done'`), as `showmigrations --plan` shows it. */
export type MigrationState = Record<string, string>;

/** A release as the record tells it. */
export interface ReleaseState {
  id: string;
  revision: string;
  /** The virtualenv it runs with (absolute path on the server). */
  venv: string;
  builtAt: string;
  builtBy?: string;
  /**
   * current: live now; healthy: served after it was activated; bad: did not
   * serve (rolled back by the health gate, or marked); rolled-back: left by a
   * `deploy rollback`; built: never activated; removed: deleted by retention.
   */
  state: 'current' | 'healthy' | 'bad' | 'rolled-back' | 'built' | 'removed';
  /** Why it is bad. */
  reason?: string;
  /** Its migration state once built (with the `migrate` option). */
  migrations?: MigrationState;
}

/** Parse the record, skipping lines that are not events (a half-written last line after a power cut). */
export function parseRecord(text: string): ReleaseEvent[] {
  const events: ReleaseEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim().startsWith('{')) continue;
    try {
      const value = JSON.parse(line) as ReleaseEvent;
      if (typeof value.event === 'string' && typeof value.release === 'string') events.push(value);
    } catch {
      // Not a whole line: ignore it rather than refuse every later deploy.
    }
  }
  return events;
}

/**
 * Every release in the order it was built (oldest first), with its state
 * after replaying the events.
 *
 * @example
 * releaseStates(parseRecord(text)).at(-1) // the newest release
 */
export function releaseStates(events: readonly ReleaseEvent[]): ReleaseState[] {
  const byId = new Map<string, ReleaseState>();
  let current: string | undefined;
  const verified = new Set<string>();
  for (const e of events) {
    if (e.event === 'built') {
      byId.set(e.release, { id: e.release, revision: e.revision, venv: e.venv, builtAt: e.time, builtBy: e.operator, state: 'built' });
      continue;
    }
    const release = byId.get(e.release);
    if (!release) continue;
    switch (e.event) {
      case 'activated':
        if (current && current !== e.release) settle(byId.get(current), verified);
        current = e.release;
        release.state = 'current';
        break;
      case 'verified':
        verified.add(e.release);
        break;
      case 'bad':
        release.state = 'bad';
        release.reason = e.reason;
        verified.delete(e.release);
        if (current === e.release) current = undefined;
        break;
      case 'rolled-back':
        release.state = 'rolled-back';
        if (current === e.release) current = undefined;
        break;
      case 'removed':
        release.state = 'removed';
        if (current === e.release) current = undefined;
        break;
      case 'migrations':
        release.migrations = e.state;
        break;
    }
  }
  return [...byId.values()];
}

/** A release that stops being current keeps what it proved: healthy if it served, else just built. */
function settle(release: ReleaseState | undefined, verified: ReadonlySet<string>): void {
  if (!release || release.state !== 'current') return;
  release.state = verified.has(release.id) ? 'healthy' : 'built';
}

/** The current release, if the record has one. */
export function currentRelease(states: readonly ReleaseState[]): ReleaseState | undefined {
  return states.find((r) => r.state === 'current');
}

/**
 * What `deploy rollback` goes back to without `--to`: the newest release
 * built before the current one that served (healthy), never a bad or removed
 * one.
 */
export function rollbackTarget(states: readonly ReleaseState[]): ReleaseState | undefined {
  const at = states.findIndex((r) => r.state === 'current');
  const before = at >= 0 ? states.slice(0, at) : states;
  return [...before].reverse().find((r) => r.state === 'healthy');
}

/**
 * The releases retention removes: all but the newest `keep` (by build
 * order), never the current one nor the newest healthy one, nor ones already
 * removed.
 */
export function releasesToRemove(states: readonly ReleaseState[], keep: number): ReleaseState[] {
  const live = states.filter((r) => r.state !== 'removed');
  const kept = new Set(live.slice(-Math.max(1, keep)).map((r) => r.id));
  const current = currentRelease(live);
  if (current) kept.add(current.id);
  const healthy = [...live].reverse().find((r) => r.state === 'healthy');
  if (healthy) kept.add(healthy.id);
  return live.filter((r) => !kept.has(r.id));
}

/**
 * A release id that sorts by time and names the revision:
 * `20261201T101533Z-bf23819`.
 */
export function releaseId(revision: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${revision.slice(0, 7)}`;
}

/**
 * The latest applied migration per app from `./manage.py showmigrations
 * --plan` (lines like `[X]  pages.0001_initial`, in the order applied).
 */
export function parseMigrationPlan(text: string): MigrationState {
  const state: MigrationState = {};
  for (const line of text.split('\n')) {
    const applied = /^\[X\]\s+([\w.]+)\.(\w+)\s*$/.exec(line.trim());
    if (applied) state[applied[1] as string] = applied[2] as string;
  }
  return state;
}

/**
 * What to migrate, with the current release's code, before going back to a
 * release whose migration state is `target`: one `migrate <app> <name>` per
 * app that differs (`zero` for an app the target had not migrated at all).
 * Apps only the target knows can't be migrated by the current code: listed
 * apart.
 */
export function migrationsBack(current: MigrationState, target: MigrationState): { steps: Array<{ app: string; to: string }>; unknown: string[] } {
  const steps: Array<{ app: string; to: string }> = [];
  for (const [app, name] of Object.entries(current)) {
    const wanted = target[app] ?? 'zero';
    if (wanted !== name) steps.push({ app, to: wanted });
  }
  const unknown = Object.keys(target).filter((app) => !(app in current));
  return { steps, unknown };
}
