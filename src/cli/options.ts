import { z } from 'zod';
import { parseDuration } from '../core/duration.ts';
import { UsageError } from '../core/errors.ts';

/** Truthy words pipelines use in environment variables. */
const flag = z
  .union([z.boolean(), z.string()])
  .transform((value) => (typeof value === 'boolean' ? value : /^(1|true|yes|on)$/i.test(value.trim())));

/**
 * `deploy run` options after merging flags over environment variables
 * (DEPLOY_YES, DEPLOY_ON_FAILURE, DEPLOY_PARALLEL, DEPLOY_TIMEOUT), validated once.
 */
export const RunOptionsSchema = z.object({
  file: z.string().optional(),
  site: z.string().optional(),
  yes: flag.default(false),
  onFailure: z.enum(['abort', 'continue']).optional(),
  parallel: z.coerce.number().int().min(1, 'must be at least 1').max(1000).default(5),
  dryRun: flag.default(false),
  verbose: flag.default(false),
  json: flag.default(false),
  timeout: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return undefined;
      try {
        return parseDuration(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
});

export type RunOptions = z.infer<typeof RunOptionsSchema>;

/** Flags win over the environment, as with most CLIs. */
export function parseRunOptions(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): RunOptions {
  const merged = {
    file: flags.file,
    site: flags.site,
    yes: flags.yes ?? env.DEPLOY_YES,
    onFailure: flags.onFailure ?? (env.DEPLOY_ON_FAILURE || undefined),
    parallel: flags.parallel ?? (env.DEPLOY_PARALLEL || undefined),
    dryRun: flags.dryRun,
    verbose: flags.verbose,
    json: flags.json,
    timeout: flags.timeout ?? (env.DEPLOY_TIMEOUT || undefined),
  };
  const parsed = RunOptionsSchema.safeParse(merged);
  if (!parsed.success) {
    const names: Record<string, string> = { onFailure: '--on-failure / DEPLOY_ON_FAILURE', parallel: '--parallel / DEPLOY_PARALLEL', timeout: '--timeout / DEPLOY_TIMEOUT' };
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new UsageError(`${names[key] ?? key}: ${issue?.message ?? 'invalid value'}`);
  }
  return parsed.data;
}

export function splitList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}
