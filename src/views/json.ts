import { DeployEvent } from '../core/event-schema.ts';

/**
 * `--json`: every event as one line of JSON on `out` (stdout), the stream
 * scripts and CI read; docs/events.md documents the shapes. Each event is
 * checked against its zod schema first and written as parsed, so the
 * stream carries only documented fields. An event that fails the check is
 * a bug in deployfile: it is replaced by a `log` event (level `error`) that
 * says what was wrong, so the stream stays valid line for line.
 */
export class JsonView {
  constructor(private readonly out: NodeJS.WritableStream) {}

  readonly handle = (event: DeployEvent): void => {
    const parsed = DeployEvent.safeParse(event);
    if (parsed.success) {
      this.out.write(`${JSON.stringify(parsed.data)}\n`);
      return;
    }
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(event)'}: ${issue.message}`).join('; ');
    const site = 'site' in event && typeof event.site === 'string' ? event.site : null;
    const replacement = {
      v: event.v,
      runId: event.runId,
      ts: event.ts,
      type: 'log',
      site,
      level: 'error',
      message: `internal: a ${String(event.type)} event did not match its schema (${problems}); please report this`,
    };
    this.out.write(`${JSON.stringify(replacement)}\n`);
  };
}
