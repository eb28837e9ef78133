import { z } from 'zod';
import { EVENT_VERSION } from './events.ts';

/**
 * The events' shapes, as zod schemas: defined once here, documented in
 * docs/events.md, and checked by the `--json` view before each line goes
 * out. Kept apart from the bus (events.ts) so that a run that shows no JSON,
 * and `deploy list`, never load zod: loading it is a third of a start-up.
 * Bump EVENT_VERSION on any incompatible change.
 */

const base = {
  v: z.literal(EVENT_VERSION),
  runId: z.string(),
  ts: z.string().describe('ISO 8601 time the event was emitted'),
};
/** null: the operator's machine, for run-once tasks. */
const site = z.string().nullable();

export const SiteStatus = z.enum(['ok', 'failed', 'aborted', 'interrupted', 'skipped', 'not-started']);
export type SiteStatus = z.infer<typeof SiteStatus>;

export const SiteSummary = z.object({
  site: z.string(),
  target: z.string().describe('user@host:port'),
  status: SiteStatus,
  durationMs: z.number(),
  failedTask: z.string().optional(),
  failedCommand: z.string().optional(),
  error: z.string().optional(),
  /** Top-level tasks that finished before the site failed or was interrupted. */
  tasksDone: z.array(z.string()).optional(),
  /** Top-level tasks that never started on the site because it failed or was interrupted first. */
  tasksNotRun: z.array(z.string()).optional(),
  /** What tasks reported for the summary (`c.report`), e.g. the revision deployed and the working copy it came from. */
  notes: z.array(z.string()).optional(),
  /** Failed commands that were skipped (a "skip it and continue" answer, or --on-failure continue): the site went on past them. */
  failuresSkipped: z.array(z.string()).optional(),
});
export type SiteSummary = z.infer<typeof SiteSummary>;

export const RunStartEvent = z.object({
  ...base,
  type: z.literal('run:start'),
  tasks: z.array(z.string()),
  sites: z.array(z.object({ site: z.string(), target: z.string() })),
  dryRun: z.boolean(),
  deployfile: z.string(),
});
export const SiteStartEvent = z.object({ ...base, type: z.literal('site:start'), site: z.string(), target: z.string() });
export const TaskStartEvent = z.object({
  ...base,
  type: z.literal('task:start'),
  site,
  task: z.string(),
  taskId: z.string(),
  parentTaskId: z.string().nullable(),
  description: z.string().optional(),
  once: z.boolean(),
});
export const TaskEndEvent = z.object({
  ...base,
  type: z.literal('task:end'),
  site,
  task: z.string(),
  taskId: z.string(),
  status: z.enum(['ok', 'failed', 'skipped']),
  durationMs: z.number(),
  error: z.string().optional(),
  note: z.string().optional().describe('why a task was skipped, e.g. requirements unchanged'),
});
export const CommandStartEvent = z.object({
  ...base,
  type: z.literal('command:start'),
  site,
  taskId: z.string().nullable(),
  commandId: z.string(),
  command: z.string(),
  composed: z.string(),
  where: z.enum(['local', 'remote']),
});
export const OutputEvent = z.object({
  ...base,
  type: z.literal('output'),
  site,
  commandId: z.string(),
  stream: z.enum(['stdout', 'stderr']),
  chunk: z.string(),
});
export const CommandEndEvent = z.object({
  ...base,
  type: z.literal('command:end'),
  site,
  commandId: z.string(),
  exitCode: z.number().nullable(),
  signal: z.string().nullable(),
  timedOut: z.boolean(),
  ok: z.boolean(),
  durationMs: z.number(),
});
export const PromptEvent = z.object({
  ...base,
  type: z.literal('prompt'),
  site,
  kind: z.enum(['confirm', 'failure']),
  question: z.string(),
  answer: z.string(),
  by: z.enum(['user', 'policy']),
});
export const LogEvent = z.object({
  ...base,
  type: z.literal('log'),
  site,
  level: z.enum(['info', 'warn', 'error']),
  message: z.string(),
});
/** pass / warn / fail: a check's verdict (`deploy doctor`). */
export const CheckStatus = z.enum(['pass', 'warn', 'fail']);
export type CheckStatus = z.infer<typeof CheckStatus>;
/**
 * One verdict of a read-only check a task made (`c.check`), e.g. one line of
 * `deploy doctor`. Views show one line per check; a failing check does not by
 * itself fail the task: the task decides (doctor fails the site when any did).
 */
export const CheckEvent = z.object({
  ...base,
  type: z.literal('check'),
  site,
  task: z.string(),
  name: z.string(),
  status: CheckStatus,
  detail: z.string(),
  fix: z.string().optional(),
});
export const SiteEndEvent = z.object({ ...base, type: z.literal('site:end'), ...SiteSummary.shape });
export const RunEndEvent = z.object({
  ...base,
  type: z.literal('run:end'),
  status: z.enum(['ok', 'failed', 'interrupted']),
  exitCode: z.number(),
  durationMs: z.number(),
  summary: z.array(SiteSummary),
});

export const DeployEvent = z.discriminatedUnion('type', [
  RunStartEvent,
  SiteStartEvent,
  TaskStartEvent,
  TaskEndEvent,
  CommandStartEvent,
  OutputEvent,
  CommandEndEvent,
  PromptEvent,
  LogEvent,
  CheckEvent,
  SiteEndEvent,
  RunEndEvent,
]);
export type DeployEvent = z.infer<typeof DeployEvent>;
