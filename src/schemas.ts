/**
 * The zod schemas of what deployfile prints for scripts: the `--json` event
 * lines and the `deploy plan --json` document. A subpath of their own, so
 * that a deployfile importing 'deployfile' or 'deployfile/tasks' never
 * loads zod (a third of every start-up); a script that reads the output
 * imports them from here.
 *
 * @example
 * import { DeployEvent, PlanDocumentSchema } from 'deployfile/schemas';
 * const event = DeployEvent.parse(JSON.parse(line));
 */
export { CheckEvent, CheckStatus, DeployEvent, LogEvent, RunEndEvent, RunStartEvent, SiteStatus, SiteSummary } from './core/event-schema.ts';
export { EVENT_VERSION } from './core/events.ts';
export { PlanDocumentSchema, SitePlanSchema, type PlanDocument, type SitePlan } from '../tasks/plan/schema.ts';
