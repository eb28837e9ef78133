/** Where a command ran. */
export type Where = 'local' | 'remote';

/**
 * What a finished command left behind, like Invoke's Result. Failed results
 * come back only in warn-only mode; otherwise a CommandError carries them.
 *
 * @example
 * const r = await c.warnOnly().run('test -f REQUIREMENTS');
 * if (r.failed) c.log('no requirements file');
 */
export interface Result {
  /** The command as the author wrote it (secrets masked). */
  readonly command: string;
  /** The full line the shell received, with exports, cd and prefixes (secrets masked). */
  readonly composed: string;
  /** Site name, or null for run-once tasks on the operator's machine. */
  readonly site: string | null;
  /** `user@host` for remote commands, `local` for local ones. */
  readonly target: string;
  readonly where: Where;
  readonly cwd: string | undefined;
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code, or null when the command was killed by a signal or lost. */
  readonly exitCode: number | null;
  /** Signal name without `SIG` (`TERM`), or null. */
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly failed: boolean;
}

/** Keeps the last `limit` characters of a stream, so huge output can't exhaust memory. */
export class TailBuffer {
  private chunks: string[] = [];
  private length = 0;
  truncated = false;

  constructor(private readonly limit: number) {}

  push(chunk: string): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length > this.limit * 2) this.compact();
  }

  private compact(): void {
    const text = this.chunks.join('');
    if (text.length > this.limit) {
      this.truncated = true;
      this.chunks = [text.slice(text.length - this.limit)];
      this.length = this.limit;
    } else {
      this.chunks = [text];
    }
  }

  toString(): string {
    this.compact();
    return this.chunks.join('');
  }
}

/** The last `count` non-empty lines of a text. */
export function tailLines(text: string, count: number): string[] {
  const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === '') lines.pop();
  return lines.slice(-count);
}
