import type { SiteInfo } from '../core/context.ts';
import type { EventBus } from '../core/events.ts';
import type { Where } from '../core/result.ts';
import type { Redactor } from '../core/secret.ts';
import type { Prompter } from '../core/prompter.ts';
import type { Transport } from '../transports/transport.ts';

/** The task a piece of run-once work is attributed to (its events carry this id). */
export interface TaskFrameRef {
  readonly taskId: string;
  readonly task: string;
  skipped?: string;
}

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
  /** Runs `fn` once per run for `key` in the run-once lane; provided by the executor. */
  runOnce<T>(key: string, label: string, fn: (rt: SiteRuntime, frame: TaskFrameRef) => Promise<T>): Promise<T>;
  /** Adds a note to this site's summary row. */
  report(note: string): void;
  /** Records a failed command the site went on past (skip and continue), for its summary row. */
  skippedFailure?(what: string): void;
  targetFor(where: Where): string;
  /**
   * What the runner has learnt about this site in this run. The builder of the
   * runtime may set it; otherwise {@link siteFacts} adds it on first use. Either
   * way it lives on the runtime, so it ends with the site's run.
   */
  facts?: SiteFacts;
}

/** What the runner learns about one site during a run (state of the site, not of the module). */
export interface SiteFacts {
  /** Whether sudo asks nothing there (NOPASSWD), by target user ('' for the default): probed once per site and user. */
  readonly sudoAsksNothing: Map<string, Promise<boolean>>;
  /** The dry run has said, once, how it shows c.sudo. */
  dryRunSudoNoted: boolean;
}

/**
 * The facts of a site's runtime, made on first use.
 *
 * @example const probes = siteFacts(rt).sudoAsksNothing;
 */
export function siteFacts(rt: SiteRuntime): SiteFacts {
  rt.facts ??= { sudoAsksNothing: new Map(), dryRunSudoNoted: false };
  return rt.facts;
}
