import { parseDuration } from '../core/duration.ts';
import { UsageError } from '../core/errors.ts';
import { parseShard, type Shard } from '../executor/select.ts';

/**
 * Sites at once when neither --parallel nor --batch says: five keeps a
 * shared server responsive while pip, collectstatic and reloads run for
 * several sites, and keeps interleaved output readable. SSH handshakes
 * are limited separately (8 at once, under sshd's MaxStartups), so higher
 * values are safe for the connection itself.
 */
export const DEFAULT_PARALLEL = 5;

/** The parsed options of `deploy run` (not the public `RunOptions` of one `c.run` call, in core/context.ts). */
export interface DeployRunOptions {
  file?: string;
  /** `-F FILE`: ssh config instead of ~/.ssh/config (see src/ssh/README.md). */
  sshConfig?: string;
  /** Record unknown host keys without asking; a flag only, never an environment variable, so it is always a visible choice. */
  acceptNewHostKeys: boolean;
  site?: string;
  exclude?: string;
  shard?: Shard;
  yes: boolean;
  onFailure?: 'abort' | 'continue';
  /** --parallel, else the --batch size, else {@link DEFAULT_PARALLEL}. */
  parallel: number;
  batch?: number;
  maxFailures?: number;
  dryRun: boolean;
  verbose: boolean;
  json: boolean;
  /** Milliseconds. */
  timeout?: number;
  /** Milliseconds. */
  deadline?: number;
}

/*
 * Checked by hand, not with zod: these few flags are parsed on every
 * `deploy run`, and loading zod would cost a third of its start-up (the
 * deployfile's schema keeps zod, and is only loaded for a deployfile not
 * validated before: see config/validated-cache.ts). Each check returns the
 * value or throws its message; parseDeployRunOptions names the flag.
 */

/** Truthy words pipelines use in environment variables. */
function flag(value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') return /^(1|true|yes|on)$/i.test(value.trim());
  throw new Error(`expected true or false, got ${JSON.stringify(value)}`);
}

function text(value: unknown): string | undefined {
  if (value === undefined || typeof value === 'string') return value;
  throw new Error(`expected text, got ${JSON.stringify(value)}`);
}

const count =
  (max: number) =>
  (value: unknown): number | undefined => {
    if (value === undefined) return undefined;
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
    if (Number.isNaN(n)) throw new Error(`expected a number, got ${JSON.stringify(value)}`);
    if (!Number.isInteger(n)) throw new Error('must be a whole number');
    if (n < 1) throw new Error('must be at least 1');
    if (n > max) throw new Error(`must be at most ${max}`);
    return n;
  };

/**
 * A duration that must be more than zero: `--timeout 0` reading as "no
 * timeout" (as it did) turns a typo or an unset `$TIMEOUT` into a run
 * that may never end. Leaving the flag out is how to say "none".
 */
const positiveDuration =
  (none: string) =>
  (value: unknown): number | undefined => {
    if (value === undefined) return undefined;
    const ms = parseDuration(text(value) as string);
    if (ms <= 0) throw new Error(`${JSON.stringify(value)} is zero; give a duration such as 30s or 10m, or leave it out for ${none}`);
    return ms;
  };

function onFailureMode(value: unknown): 'abort' | 'continue' | undefined {
  if (value === undefined || value === 'abort' || value === 'continue') return value;
  throw new Error(`expected "abort" or "continue", got ${JSON.stringify(value)}`);
}

const shard = (value: unknown): Shard | undefined => (value === undefined ? undefined : parseShard(text(value) as string));

/** How an error names each option: the flag and its environment variable. */
const NAMES: Record<string, string> = {
  onFailure: '--on-failure / DEPLOY_ON_FAILURE',
  parallel: '--parallel / DEPLOY_PARALLEL',
  batch: '--batch / DEPLOY_BATCH',
  maxFailures: '--max-failures / DEPLOY_MAX_FAILURES',
  shard: '--shard / DEPLOY_SHARD',
  yes: '--yes / DEPLOY_YES',
  json: '--json / DEPLOY_JSON',
  timeout: '--timeout / DEPLOY_TIMEOUT',
  deadline: '--deadline / DEPLOY_DEADLINE',
};

/**
 * `deploy run` options after merging flags over environment variables
 * (DEPLOY_YES, DEPLOY_ON_FAILURE, DEPLOY_PARALLEL, DEPLOY_BATCH,
 * DEPLOY_MAX_FAILURES, DEPLOY_SITE, DEPLOY_EXCLUDE, DEPLOY_SHARD,
 * DEPLOY_JSON, DEPLOY_TIMEOUT, DEPLOY_DEADLINE), validated once: the first
 * bad one is a UsageError naming its flag and variable. An empty
 * `--site`/`--exclude` is refused (see {@link checkSelection}). Flags win
 * over the environment, as with most CLIs.
 */
export function parseDeployRunOptions(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): DeployRunOptions {
  const merged = {
    file: flags.file,
    sshConfig: flags.sshConfig,
    acceptNewHostKeys: flags.acceptNewHostKeys,
    site: flags.site ?? (env.DEPLOY_SITE || undefined),
    exclude: flags.exclude ?? (env.DEPLOY_EXCLUDE || undefined),
    shard: flags.shard ?? (env.DEPLOY_SHARD || undefined),
    yes: flags.yes ?? env.DEPLOY_YES,
    onFailure: flags.onFailure ?? (env.DEPLOY_ON_FAILURE || undefined),
    parallel: flags.parallel ?? (env.DEPLOY_PARALLEL || undefined),
    batch: flags.batch ?? (env.DEPLOY_BATCH || undefined),
    maxFailures: flags.maxFailures ?? (env.DEPLOY_MAX_FAILURES || undefined),
    dryRun: flags.dryRun,
    verbose: flags.verbose,
    json: flags.json ?? env.DEPLOY_JSON,
    timeout: flags.timeout ?? (env.DEPLOY_TIMEOUT || undefined),
    deadline: flags.deadline ?? (env.DEPLOY_DEADLINE || undefined),
  };
  checkSelection(merged.site, flags.site !== undefined ? '-s/--site' : 'DEPLOY_SITE');
  checkSelection(merged.exclude, flags.exclude !== undefined ? '-x/--exclude' : 'DEPLOY_EXCLUDE');
  const check = <T>(key: keyof typeof merged, parse: (value: unknown) => T): T => {
    try {
      return parse(merged[key]);
    } catch (error) {
      throw new UsageError(`${NAMES[key] ?? key}: ${(error as Error).message}`);
    }
  };
  const parsed = {
    file: check('file', text),
    sshConfig: check('sshConfig', text),
    acceptNewHostKeys: check('acceptNewHostKeys', flag),
    site: check('site', text),
    exclude: check('exclude', text),
    shard: check('shard', shard),
    yes: check('yes', flag),
    onFailure: check('onFailure', onFailureMode),
    parallel: check('parallel', count(1000)),
    batch: check('batch', count(100_000)),
    maxFailures: check('maxFailures', count(100_000)),
    dryRun: check('dryRun', flag),
    verbose: check('verbose', flag),
    json: check('json', flag),
    timeout: check('timeout', positiveDuration('no default per-command timeout')),
    deadline: check('deadline', positiveDuration('no deadline for the run')),
  };
  // With --batch alone, a whole batch runs at once.
  return { ...parsed, parallel: parsed.parallel ?? parsed.batch ?? DEFAULT_PARALLEL };
}

export function splitList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/**
 * An explicitly empty selection is a mistake, never "every site":
 * `-s "$SITE"` with SITE unset, `--site=`, `-s ,`, `-x ''` would otherwise
 * deploy the whole fleet. Leaving the flag out is how to say "all".
 * An environment variable set to the empty string counts as not set (CI
 * templates define `DEPLOY_SITE: ${{ inputs.site }}` whether or not it was
 * given; run.ts says so on stderr), but one holding only commas or spaces
 * is refused like the flag.
 *
 * @example checkSelection('', '-s/--site') // throws UsageError
 */
export function checkSelection(value: unknown, source: string): void {
  if (typeof value !== 'string') return;
  if ((splitList(value) ?? []).length > 0) return;
  const exclude = /exclude/i.test(source);
  const env = !source.startsWith('-');
  const omit = env ? `unset ${source}` : `leave ${source} out`;
  const fix = exclude
    ? `name sites, groups or globs to leave out (e.g. -x shop-test), or ${omit} to leave none out`
    : `name sites, groups or globs (e.g. -s web1 or -s 'shop-*'), or ${omit} to run on every site`;
  throw new UsageError(`${source} ${JSON.stringify(value)} names no site: ${fix}`);
}
