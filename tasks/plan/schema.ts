import { z } from 'zod';

/**
 * What `deploy plan` found for one site: the shape of `--json`'s `sites[]`
 * and of what the plan task leaves for the command. docs/plan.schema.json is
 * generated from {@link PlanDocumentSchema}; a test keeps the two in sync.
 */
export const SitePlanSchema = z.object({
  site: z.string(),
  /** The working copy the site is deployed from (absolute). */
  localDir: z.string(),
  layout: z.enum(['in-place', 'releases']),
  /** The full SHA the site's checkout is at (what is served, unless a reload is pending). */
  served: z.string(),
  /** The full SHA a deploy would ship: the working copy's HEAD, which deploy pushes. */
  ship: z.string(),
  branch: z.string(),
  upToDate: z.boolean(),
  /**
   * How the served revision stands to the one a deploy would ship: `same`;
   * `behind` (a deploy fast-forwards it); `ahead` or `diverged` (a deploy
   * would stop at fetch); `unknown` (the served commit is not in the working
   * copy: the server has history of its own, or it was pushed from elsewhere).
   */
  history: z.enum(['same', 'behind', 'ahead', 'diverged', 'unknown']),
  /** Newest first, at most 10; `commitCount` has them all. */
  commits: z.array(z.object({ sha: z.string(), subject: z.string() })),
  commitCount: z.number().int(),
  /** What would make a deploy refuse or surprise: a diverged server, edits on the server, an unpushed or unclean working copy. */
  warnings: z.array(z.string()),
  local: z.object({
    /** No tracked file differs from HEAD (push refuses otherwise). */
    clean: z.boolean(),
    /** The remote branch is at HEAD already; null when the remote could not be asked. */
    pushed: z.boolean().nullable(),
  }),
  requirements: z.object({
    file: z.string(),
    /** `unchanged`: pip is skipped; `changed`: it runs; `first`: no record of an earlier install, it runs. */
    status: z.enum(['unchanged', 'changed', 'first']),
    added: z.array(z.object({ name: z.string(), to: z.string() })),
    removed: z.array(z.object({ name: z.string(), from: z.string() })),
    changed: z.array(z.object({ name: z.string(), from: z.string(), to: z.string() })),
    /**
     * When pip would run in place: what `pip install --dry-run --report` in the
     * site's virtualenv says it would install (dependencies included, the ones
     * already satisfied left out), or why it could not say.
     */
    pip: z.union([z.object({ install: z.array(z.object({ name: z.string(), version: z.string() })) }), z.object({ error: z.string() })]).optional(),
  }),
  static: z.object({
    /** `skipped`: no static input differs; `collected`: collectstatic runs; `always`: skipUnchanged is off. */
    status: z.enum(['skipped', 'collected', 'always']),
    /** Why it runs: the static inputs that differ, or that no collect was recorded. */
    reason: z.string(),
  }),
  migrations: z.array(z.object({ app: z.string(), name: z.string(), path: z.string(), irreversible: z.string().optional() })),
  settings: z.object({
    /** The served `settings.py` and the new revision's `settings_production.py`. */
    file: z.string(),
    changed: z.boolean(),
    /** A unified diff, served first, when changed. */
    diff: z.string().optional(),
  }),
  vassal: z.object({ file: z.string(), changed: z.boolean(), reason: z.string() }),
  /** A deploy would change something on the site (code, packages, static files, database, settings). */
  wouldChange: z.boolean(),
});
export type SitePlan = z.infer<typeof SitePlanSchema>;

/** `deploy plan --json`: one document on stdout. */
export const PlanDocumentSchema = z.object({
  /** ISO 8601, when the plan was made. */
  at: z.string(),
  sites: z.array(SitePlanSchema),
  /** Sites that could not be planned, with why (the site's failure, as the run reported it). */
  failed: z.array(z.object({ site: z.string(), error: z.string() })),
  /** 0 nothing would change, 3 something would, 1 a site could not be planned. */
  exitCode: z.union([z.literal(0), z.literal(1), z.literal(3)]),
});
export type PlanDocument = z.infer<typeof PlanDocumentSchema>;
