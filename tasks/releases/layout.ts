import { hostname, userInfo } from 'node:os';
import { quote, quotePath, sh, type Context } from '../../src/index.ts';
import { expandSite, resolveSite, shellPath, type PerSite, type ResolvedSiteOptions, type SiteOptions } from '../options.ts';
import { parseMigrationPlan, parseRecord, RECORD_PATH, releaseStates, type MigrationState, type ReleaseEvent, type ReleaseState } from './record.ts';

/** Options of the release layout (see `djangoTasks({ layout: 'releases' })`). */
export interface ReleaseOptions extends SiteOptions {
  /** Where releases are built. Default `/home/{site}/releases`. */
  releasesDir?: PerSite<string>;
  /** The git repository cached on the server, fetched into for each release. Default `/home/{site}/.deployfile/repo.git`. */
  repoCache?: PerSite<string>;
  /** The repository to clone when the site has no code yet; default: the origin of the in-place checkout being converted. */
  repository?: PerSite<string>;
  /** How many releases to keep (besides the current one and the newest that served). Default 5. */
  keepReleases?: number;
  /** Refuse to build a release when the releases' filesystem has less free space, in MiB. Default 200. */
  minFreeMiB?: number;
  /** Put the previous release back by itself when the new one does not serve. Default true. */
  healthGate?: boolean;
  /**
   * Run `./manage.py migrate --noinput` in the new release before switching
   * to it (the production settings need a database), and record each
   * release's migration state, so a rollback across migrations stops and
   * says what to migrate back first. Default false.
   */
  migrate?: boolean;
  /**
   * Skip collectstatic, and say so, when the new release's static inputs
   * (the files the finders read, by content, and the settings package) are
   * those of the last release collected with the same virtualenv, and
   * STATIC_ROOT still holds what it collected. Default true; as the in-place
   * `collectstatic`'s option of the same name.
   */
  skipUnchanged?: boolean;
}

/** Where a site's releases live, every path absolute. */
export interface ReleasePaths extends ResolvedSiteOptions {
  releasesDir: string;
  repoCache: string;
  /** `~/.deployfile/releases.jsonl`, relative to the home directory commands start in. */
  record: string;
  repository: string | undefined;
  keep: number;
  minFreeMiB: number;
  healthGate: boolean;
  migrate: boolean;
}

function perSite(value: PerSite<string> | undefined, c: Context, fallback: string): string {
  const given = typeof value === 'function' ? value(c.site) : value;
  return expandSite(given ?? fallback, c.site.name);
}

/** The site's release paths: its `vars`, then the options, then defaults from its name. */
export function releasePaths(c: Context, options: ReleaseOptions): ReleasePaths {
  const site = resolveSite(c.site, options);
  const vars = (c.site.vars ?? {}) as Record<string, unknown>;
  const fromVars = (key: string): string | undefined => (typeof vars[key] === 'string' && vars[key] !== '' ? expandSite(vars[key] as string, c.site.name) : undefined);
  const repository = fromVars('repository') ?? (options.repository === undefined ? undefined : perSite(options.repository, c, ''));
  return {
    ...site,
    releasesDir: fromVars('releasesDir') ?? perSite(options.releasesDir, c, '/home/{site}/releases'),
    repoCache: fromVars('repoCache') ?? perSite(options.repoCache, c, '/home/{site}/.deployfile/repo.git'),
    record: RECORD_PATH,
    repository: repository || undefined,
    keep: options.keepReleases ?? 5,
    minFreeMiB: options.minFreeMiB ?? 200,
    healthGate: options.healthGate ?? true,
    migrate: options.migrate ?? false,
  };
}

/** Who deploys or rolls back, as the record says it: `DEPLOY_OPERATOR`, else user@host (as the deploy lock does). */
export function operator(): string {
  return process.env.DEPLOY_OPERATOR || `${userInfo().username}@${hostname()}`;
}

/** The record's events as the server has them (none yet: an empty list). */
export async function readRecord(c: Context, paths: ReleasePaths): Promise<ReleaseEvent[]> {
  const text = await c.run(sh`cat ${shellPath(paths.record)} 2>/dev/null || true`, { quiet: true });
  return parseRecord(text.stdout);
}

/** The releases, replayed from the record. */
export async function readReleases(c: Context, paths: ReleasePaths): Promise<ReleaseState[]> {
  return releaseStates(await readRecord(c, paths));
}

/** A record event as tasks write it: the time is added when it is appended. */
export type NewReleaseEvent = ReleaseEvent extends infer E ? (E extends ReleaseEvent ? Omit<E, 'time'> : never) : never;

/**
 * The shell command that appends events to the record, for a script that
 * changes the links: run in the same uninterruptible step, the record can
 * never name another release as current than the links do, whenever the
 * deploy process dies.
 */
export function recordCommand(paths: ReleasePaths, ...events: NewReleaseEvent[]): string {
  const time = new Date().toISOString();
  const lines = events.map((e) => `${JSON.stringify({ ...e, time })}\n`).join('');
  return `mkdir -p ~/.deployfile && printf '%s' ${quote(lines)} >> ${quotePath(paths.record)}`;
}

/** Append events to the record: one `printf` of whole lines, appended with O_APPEND. */
export async function appendRecord(c: Context, paths: ReleasePaths, ...events: NewReleaseEvent[]): Promise<void> {
  await c.run(recordCommand(paths, ...events), { quiet: true, label: `record: ${events.map((e) => `${e.event} ${e.release}`).join(', ')}` });
}

/**
 * Replace `link` by a symlink to `target` in one rename (a new link under a
 * temporary name, renamed over the old one), so there is never a moment
 * without a valid path. Python's os.replace is rename(2) on every POSIX
 * system; `mv -T` is GNU only.
 */
export function relinkLines(pairs: readonly (readonly [link: string, target: string])[]): string {
  return pairs
    .map(([link, target]) => `ln -sfn ${quote(target)} ${quote(`${link}.deployfile-new`)} && python3 -c 'import os, sys; os.replace(sys.argv[1], sys.argv[2])' ${quote(`${link}.deployfile-new`)} ${quote(link)}`)
    .join(' && ');
}

/** One script that ignores INT, TERM and HUP, so Ctrl-C or a lost connection cannot stop it half-way. */
export function uninterruptible(script: string): string {
  return `trap '' INT TERM HUP; ${script}`;
}

/** The migration state of the code in `dir` with `venv`, from `./manage.py showmigrations --plan`. */
export async function migrationStateOf(c: Context, dir: string, venv: string): Promise<MigrationState> {
  const plan = await c.cd(dir).prefix(sh`. ${venv}/bin/activate`).run('./manage.py showmigrations --plan', { quiet: true });
  return parseMigrationPlan(plan.stdout);
}
