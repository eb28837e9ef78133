/**
 * deployfile's public API: what a `deployfile.ts` and the task library import.
 *
 * @example
 * import { defineDeployfile, task, sh } from 'deployfile';
 */
export { defineDeployfile, task } from './config/define.ts';
export type { DeployfileConfig, SiteConfig, TaskDefinition, TaskFn } from './config/define.ts';
export type { CheckResult, CommandFn, ConfirmOptions, Context, RunOptions, SiteInfo, SudoOptions } from './core/context.ts';
export { quote, quotePath, raw, sh } from './core/quote.ts';
export type { CommandInput, ShellCommand, ShellValue } from './core/quote.ts';
export { secret } from './core/secret.ts';
export type { Secret } from './core/secret.ts';
export type { Result } from './core/result.ts';
// Exit codes and usage errors are the CLI's business, not a deployfile's: not exported.
export { AbortError, CommandError, ConnectionError, DeployfileError, InterruptedError } from './core/errors.ts';
export { parseDuration } from './core/duration.ts';
export { ROLLBACK_REQUEST, type RollbackRequest } from './core/rollback-request.ts';
/** Where a task run through the admin account (deploy provision) finds the site's own user: `c.site.vars[SITE_USER_VAR]`. */
export { SITE_USER_VAR } from './config/admin.ts';
// The event's zod schema is in 'deployfile/schemas', so a deployfile's import never loads zod.
export { EVENT_VERSION, type DeployEvent } from './core/events.ts';
