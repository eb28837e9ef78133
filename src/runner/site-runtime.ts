import type { SiteInfo } from '../core/context.ts';
import type { EventBus } from '../core/events.ts';
import type { Where } from '../core/result.ts';
import type { Redactor } from '../core/secret.ts';
import type { Prompter } from '../prompts/prompter.ts';
import type { Transport } from '../transports/transport.ts';

/**
 * Everything the commands of one site (or of the run-once lane, where
 * `site` is null) share during a run. Built by the executor; read-only to tasks.
 */
export interface SiteRuntime {
  readonly site: SiteInfo | null;
  readonly siteName: string | null;
  /** The site's connection; null in the run-once lane. */
  readonly remote: Transport | null;
  readonly local: Transport;
  readonly bus: EventBus;
  readonly redactor: Redactor;
  readonly prompter: Prompter;
  readonly shared: Map<string, unknown>;
  readonly dryRun: boolean;
  /** Aborted on Ctrl-C: no new command starts, running ones are ended. */
  readonly signal: AbortSignal;
  readonly defaultTimeoutMs?: number;
  readonly outputLimit?: number;
  /** Password for `c.sudo`, if one is known (asked or from the environment). */
  sudoPassword?: () => Promise<string | undefined>;
  /** Runs a task by name on this runtime; provided by the executor. */
  invoke(task: string, parentTaskId: string | null): Promise<void>;
  targetFor(where: Where): string;
}
