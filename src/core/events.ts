import type { CheckStatus, DeployEvent, SiteStatus, SiteSummary } from './event-schema.ts';

/**
 * The event stream is the only thing the execution core tells the outside
 * world. Views (listr2, plain lines, JSON lines) and tests consume it. The
 * shapes are zod schemas in event-schema.ts; this file holds only their
 * types and the bus, so emitting events costs no zod. Bump EVENT_VERSION
 * on any incompatible change.
 */
export const EVENT_VERSION = 1;

export type { CheckStatus, DeployEvent, SiteStatus, SiteSummary };
export type EventType = DeployEvent['type'];
export type EventOf<T extends EventType> = Extract<DeployEvent, { type: T }>;
/** An event as the core emits it: the envelope (v, runId, ts) is added by the bus. */
export type EventInput = DeployEvent extends infer E ? (E extends DeployEvent ? Omit<E, 'v' | 'runId' | 'ts'> : never) : never;

export type Listener = (event: DeployEvent) => void;

/** Stamps events with the envelope and hands them to every listener, in order. */
export class EventBus {
  private readonly listeners: Listener[] = [];

  /** Commands started in this run so far: command ids are unique within a run, and start again with each run. */
  private commands = 0;

  constructor(readonly runId: string) {}

  /**
   * The id for the next command of this run (`c1`, `c2`, …): the run hands
   * them out, not the module, so two runs in one process never share a count.
   *
   * @example const commandId = rt.bus.nextCommandId();
   */
  nextCommandId(): string {
    return `c${++this.commands}`;
  }

  on(listener: Listener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(input: EventInput): void {
    const event = { v: EVENT_VERSION, runId: this.runId, ts: new Date().toISOString(), ...input } as DeployEvent;
    for (const listener of this.listeners) listener(event);
  }
}
