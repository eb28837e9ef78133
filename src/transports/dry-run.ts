import type { ExecOptions, ExecResult, Transport } from './transport.ts';

/**
 * SSHKit's Printer: accepts every command, runs none, connects to nothing.
 * The runner still emits each command's composed line, so a view shows
 * exactly what would run; this transport only records and succeeds.
 */
export class DryRunTransport implements Transport {
  readonly commands: string[] = [];
  readonly transfers: string[] = [];

  constructor(readonly target: string) {}

  async connect(): Promise<void> {}

  async exec(command: string, _options: ExecOptions): Promise<ExecResult> {
    // A real run refuses it before sending anything; a dry run must not promise otherwise.
    if (command.includes('\0')) throw new TypeError(`refusing to run a command containing a NUL byte (character ${command.indexOf('\0') + 1}): neither SSH nor a shell can pass one; nothing was sent`);
    this.commands.push(command);
    return { exitCode: 0, signal: null };
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    this.transfers.push(`put ${localPath} -> ${remotePath}`);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    this.transfers.push(`get ${remotePath} -> ${localPath}`);
  }

  async close(): Promise<void> {}
}
