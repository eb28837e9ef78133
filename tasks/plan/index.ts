/**
 * The plan task as the task library hands it out. What it does is in
 * ./run.ts, loaded the first time it runs: every deployfile imports the task
 * library, and a run that never plans should not pay for it at start-up
 * (issue 17: start-up near Node's).
 */
import { task, type TaskDefinition } from '../../src/index.ts';
import type { CollectstaticOptions } from '../collectstatic.ts';
import type { InstallRequirementsOptions } from '../install-requirements.ts';

/** Options of {@link plan}: the ones of the tasks whose effect it foresees. */
export interface PlanOptions extends InstallRequirementsOptions, Pick<CollectstaticOptions, 'skipUnchanged'> {}

/**
 * The `c.shared` key where `deploy plan` leaves a Map of site name to
 * {@link SitePlan} for the plan task to fill. Here, not beside the schema,
 * so that loading the task library does not load zod.
 */
export const PLAN_RESULTS = 'deployfile.tasks.plan:results';

/** Commits listed per site; the rest are counted. */
export const PLAN_COMMITS_SHOWN = 10;

/**
 * What `deploy` would change on each site, found read-only: the served
 * revision (the server's checkout, as the site user) against the working
 * copy's HEAD (what deploy pushes), and from the files between them whether
 * pip would run and what it would change, whether collectstatic would run,
 * the migrations a deploy would apply (and which cannot be undone), and a
 * diff of the production settings. Nothing is written anywhere: no lock, no
 * history, no `git fetch` (on the server or here); the remote is only asked
 * with `git ls-remote`. `deploy plan` runs it and prints the table.
 *
 * @example
 * tasks: { plan: plan({ requirements: 'requirements/production.txt' }) }
 */
export function plan(options: PlanOptions = {}): TaskDefinition {
  return task({
    description: 'Show what a deploy would change on the site: commits, packages, static files, migrations, settings (read-only)',
    lock: false,
    run: async (c) => (await import('./run.ts')).runPlan(c, options),
  });
}
