import type { DeployEvent } from '../core/events.ts';

/** `--json`: every event as one line of JSON, the stream scripts read. */
export class JsonView {
  constructor(private readonly out: NodeJS.WritableStream) {}

  readonly handle = (event: DeployEvent): void => {
    this.out.write(`${JSON.stringify(event)}\n`);
  };
}
