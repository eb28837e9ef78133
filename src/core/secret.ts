const SECRET = Symbol.for('deployfile.secret');

/**
 * A value that must never be shown: views, `--verbose`, JSON events and
 * error messages print `***` in its place.
 *
 * @example
 * c.run(sh`createdb --password ${secret(process.env.DB_PASSWORD)}`)
 */
export interface Secret {
  readonly [SECRET]: true;
  reveal(): string;
  toString(): string;
  toJSON(): string;
}

export const MASK = '***';

/** Mark a value as secret. `undefined` becomes an empty secret so env lookups stay short. */
export function secret(value: string | undefined): Secret {
  const hidden = value ?? '';
  return {
    [SECRET]: true,
    reveal: () => hidden,
    toString: () => MASK,
    toJSON: () => MASK,
  };
}

export function isSecret(value: unknown): value is Secret {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[SECRET] === true;
}

/**
 * Replaces every occurrence of the given secrets (and their shell-quoted
 * forms, which is how they appear inside command lines) with `***`.
 */
export class Redactor {
  private readonly values = new Set<string>();

  add(...values: readonly string[]): void {
    for (const value of values) {
      // Very short values would mask ordinary text everywhere; a one-character
      // password is not worth making every log unreadable for.
      if (value.length >= 3) this.values.add(value);
    }
  }

  redact(text: string): string {
    let out = text;
    for (const value of this.values) {
      if (out.includes(value)) out = out.split(value).join(MASK);
      const quoted = value.replace(/'/g, `'\\''`);
      if (quoted !== value && out.includes(quoted)) out = out.split(quoted).join(MASK);
    }
    return out;
  }

  get size(): number {
    return this.values.size;
  }
}

/**
 * Redacts a stream chunk by chunk without letting a secret that a chunk
 * boundary splits slip through: while there are secrets to hide, the
 * unfinished last line is held back until its newline or the end of the
 * stream (at most 64 KiB of it, so a line without end still flows).
 */
export class StreamRedactor {
  private held = '';

  constructor(private readonly redactor: Redactor) {}

  push(chunk: string): string {
    if (this.redactor.size === 0 && this.held === '') return chunk;
    const text = this.held + chunk;
    const cut = text.lastIndexOf('\n') + 1;
    if (cut === 0 && text.length < 65_536) {
      this.held = text;
      return '';
    }
    this.held = cut === 0 ? '' : text.slice(cut);
    return this.redactor.redact(cut === 0 ? text : text.slice(0, cut));
  }

  /** What is still held back, redacted; call when the stream ends. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest === '' ? '' : this.redactor.redact(rest);
  }
}
