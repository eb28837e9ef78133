import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import { UsageError } from '../core/errors.ts';
import { parseShard } from '../executor/select.ts';

/** Truthy words pipelines use in environment variables. */
const flag = z
  .union([z.boolean(), z.string()])
  .transform((value) => (typeof value === 'boolean' ? value : /^(1|true|yes|on)$/i.test(value.trim())));

/**
 * Sites at once when neither --parallel nor --batch says: five keeps a
 * shared server responsive while pip, collectstatic and reloads run for
 * several sites, and keeps interleaved output readable. SSH handshakes
 * are limited separately (8 at once, under sshd's MaxStartups), so higher
 * values are safe for the connection itself.
 */
export const DEFAULT_PARALLEL = 5;

/**
 * A duration that must be more than zero: `--timeout 0` reading as "no
 * timeout" (as it did) turns a typo or an unset `$TIMEOUT` into a run
 * that may never end. Leaving the flag out is how to say "none".
 */
const positiveDuration = (none: string) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      let ms: number;
      try {
        ms = parseDuration(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
      if (ms <= 0) {
        ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is zero; give a duration such as 30s or 10m, or leave it out for ${none}` });
        return z.NEVER;
      }
      return ms;
    });

const count = (max: number) => z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').max(max);

/**
 * `deploy run` options after merging flags over environment variables
 * (DEPLOY_YES, DEPLOY_ON_FAILURE, DEPLOY_PARALLEL, DEPLOY_BATCH,
 * DEPLOY_MAX_FAILURES, DEPLOY_SITE, DEPLOY_EXCLUDE, DEPLOY_SHARD,
 * DEPLOY_JSON, DEPLOY_TIMEOUT, DEPLOY_DEADLINE), validated once. An empty
 * `--site`/`--exclude` is refused (see {@link checkSelection}).
 */
export const DeployRunOptionsSchema = z.object({
  file: z.string().optional(),
  /** `-F FILE`: ssh config instead of ~/.ssh/config (see src/ssh/README.md). */
  sshConfig: z.string().optional(),
  /** Record unknown host keys without asking; a flag only, never an environment variable, so it is always a visible choice. */
  acceptNewHostKeys: flag.default(false),
  site: z.string().optional(),
  exclude: z.string().optional(),
  shard: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      try {
        return parseShard(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  yes: flag.default(false),
  onFailure: z.enum(['abort', 'continue']).optional(),
  /** Undefined here: parseDeployRunOptions fills in --batch, else DEFAULT_PARALLEL. */
  parallel: count(1000).optional(),
  batch: count(100_000).optional(),
  maxFailures: count(100_000).optional(),
  dryRun: flag.default(false),
  verbose: flag.default(false),
  json: flag.default(false),
  timeout: positiveDuration('no default per-command timeout'),
  deadline: positiveDuration('no deadline for the run'),
});

/** The parsed options of `deploy run` (not the public `RunOptions` of one `c.run` call, in core/context.ts). */
export type DeployRunOptions = Omit<z.infer<typeof DeployRunOptionsSchema>, 'parallel'> & { parallel: number };

/** Flags win over the environment, as with most CLIs. */
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
  const parsed = DeployRunOptionsSchema.safeParse(merged);
  if (!parsed.success) {
    const names: Record<string, string> = {
      onFailure: '--on-failure / DEPLOY_ON_FAILURE',
      parallel: '--parallel / DEPLOY_PARALLEL',
      batch: '--batch / DEPLOY_BATCH',
      maxFailures: '--max-failures / DEPLOY_MAX_FAILURES',
      shard: '--shard / DEPLOY_SHARD',
      json: '--json / DEPLOY_JSON',
      timeout: '--timeout / DEPLOY_TIMEOUT',
      deadline: '--deadline / DEPLOY_DEADLINE',
    };
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new UsageError(`${names[key] ?? key}: ${issue?.message ?? 'invalid value'}`);
  }
  // With --batch alone, a whole batch runs at once.
  return { ...parsed.data, parallel: parsed.data.parallel ?? parsed.data.batch ?? DEFAULT_PARALLEL };
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
