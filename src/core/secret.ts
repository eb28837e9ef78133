const SECRET = Symbol.for('deployfile.secret');

/**
 * A value that must never be shown: views, `--verbose`, JSON events and
 * error messages print `***` in its place.
 *
 * @example
 * // Through the environment: the value travels on the command's stdin, never on a command line.
 * c.env({ PGPASSWORD: secret(process.env.DB_PASSWORD) }).run(sh`createdb -h db -U ${user} ${name}`)
 */
export interface Secret {
  readonly [SECRET]: true;
  reveal(): string;
  toString(): string;
  toJSON(): string;
}

export const MASK = '***';

/**
 * Secrets shorter than this are not searched for in output (command lines
 * still show `***` exactly where they were interpolated): a 1- or 2-character
 * value would mask ordinary text everywhere ("ok", "-n", every "a").
 */
export const MIN_REDACTED_LENGTH = 3;

/**
 * The operator-side secrets read from the environment: never passed on to
 * `c.local` children, and redacted from the start of a run.
 */
export const OPERATOR_SECRET_VARS = ['DEPLOY_SSH_KEY', 'DEPLOY_SSH_PASSPHRASE', 'DEPLOY_SUDO_PASSWORD'] as const;

// Every value ever passed to secret() in this process, so a run redacts it from
// the moment it was created (a deployfile usually creates its secrets when it
// is loaded), not only from the first command that uses it. This is
// deliberately process-wide, not per run: a value marked secret is secret for
// every run, and the only effect on another run is that it is masked there
// too. Kept on globalThis under Symbol.for so that the CLI's copy of this
// module and the copy jiti loads for a deployfile share it.
const REGISTRY = Symbol.for('deployfile.secret-values');
interface Registry {
  values: Set<string>;
  version: number;
}
function registry(): Registry {
  const store = globalThis as unknown as Record<symbol, Registry | undefined>;
  return (store[REGISTRY] ??= { values: new Set(), version: 0 });
}

/** Mark a value as secret. `undefined` becomes an empty secret so env lookups stay short. */
export function secret(value: string | undefined): Secret {
  const hidden = value ?? '';
  const known = registry();
  if (hidden.length >= MIN_REDACTED_LENGTH && !known.values.has(hidden)) {
    known.values.add(hidden);
    known.version++;
  }
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

/** Lines of a multi-line secret at least this long are masked on their own too. */
const MIN_LINE_LENGTH = 16;

/**
 * The shapes a secret takes in text the tool shows: as is, and without its
 * surrounding whitespace; with CRLF line ends (a multi-line key through a
 * terminal); each long line of a multi-line one on its own (part of a PEM
 * key printed by `head`), armour lines (`-----BEGIN ...`) excepted; and
 * single-quoted once and twice (`'` becomes `'\''`), which is how it sits
 * inside a composed line and inside the `sh -c '...'` of `c.sudo`.
 */
function formsOf(value: string): string[] {
  const forms = [value];
  const trimmed = value.trim();
  if (trimmed !== value && trimmed.length >= MIN_REDACTED_LENGTH) forms.push(trimmed);
  if (value.includes('\n')) {
    forms.push(value.replace(/\r?\n/g, '\r\n'));
    for (const line of value.split(/\r?\n/)) if (line.trim().length >= MIN_LINE_LENGTH && !line.startsWith('-----')) forms.push(line.trim());
  }
  if (value.includes("'")) {
    const once = value.replace(/'/g, `'\\''`);
    forms.push(once, once.replace(/'/g, `'\\''`));
  }
  return forms;
}

type Span = [start: number, end: number];

/**
 * Replaces every occurrence of the given secrets (and their quoted forms)
 * with `***`. Overlapping occurrences of different secrets are masked as one
 * span, so no part of the longer one is left visible.
 */
export class Redactor {
  private readonly values = new Set<string>();
  private version = 0;
  private cache: { own: number; global: number; patterns: string[] } | undefined;

  add(...values: readonly string[]): void {
    for (const value of values) {
      // See MIN_REDACTED_LENGTH: too short to search for without masking ordinary text.
      if (value.length >= MIN_REDACTED_LENGTH && !this.values.has(value)) {
        this.values.add(value);
        this.version++;
      }
    }
  }

  /** Every form of every known secret, longest first. */
  patterns(): readonly string[] {
    const known = registry();
    if (this.cache?.own !== this.version || this.cache.global !== known.version) {
      const all = new Set<string>();
      for (const value of [...this.values, ...known.values]) for (const form of formsOf(value)) all.add(form);
      this.cache = { own: this.version, global: known.version, patterns: [...all].sort((a, b) => b.length - a.length) };
    }
    return this.cache.patterns;
  }

  /** Disjoint, sorted spans of `text` covered by some secret (overlaps merged). */
  spans(text: string): Span[] {
    const found: Span[] = [];
    for (const pattern of this.patterns()) {
      for (let at = text.indexOf(pattern); at !== -1; at = text.indexOf(pattern, at + 1)) found.push([at, at + pattern.length]);
    }
    if (found.length < 2) return found;
    found.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const merged: Span[] = [found[0] as Span];
    for (const [start, end] of found.slice(1)) {
      const last = merged[merged.length - 1] as Span;
      if (start < last[1]) last[1] = Math.max(last[1], end);
      else merged.push([start, end]);
    }
    return merged;
  }

  redact(text: string): string {
    if (this.patterns().length === 0) return text;
    return mask(text, this.spans(text), text.length);
  }

  get size(): number {
    return this.patterns().length;
  }
}

/** `text` up to `until` with each span replaced by `***`. */
function mask(text: string, spans: readonly Span[], until: number): string {
  let out = '';
  let from = 0;
  for (const [start, end] of spans) {
    if (end > until) break;
    out += text.slice(from, start) + MASK;
    from = end;
  }
  return out + text.slice(from, until);
}

/**
 * Redacts a stream chunk by chunk without letting a secret that chunk
 * boundaries split slip through, multi-line ones (a PEM key) included: the
 * tail of what arrived that could be the start of a secret is held back
 * until the next chunk shows whether it is one (or the stream ends).
 * Everything before it flows at once.
 */
export class StreamRedactor {
  private held = '';

  constructor(private readonly redactor: Redactor) {}

  push(chunk: string): string {
    const patterns = this.redactor.patterns();
    if (patterns.length === 0 && this.held === '') return chunk;
    const text = this.held + chunk;
    const spans = this.redactor.spans(text);
    let cut = holdFrom(text, patterns);
    // A tail that may be a longer secret overlapping one already found: hold
    // the whole span back, so the merged span is masked as one next time.
    for (const [start, end] of spans) if (start < cut && cut < end) cut = start;
    this.held = text.slice(cut);
    return mask(text, spans, cut);
  }

  /** What is still held back, redacted; call when the stream ends. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest === '' ? '' : this.redactor.redact(rest);
  }
}

/** Where the longest tail of `text` that is the unfinished start of a pattern begins (text.length if none). */
function holdFrom(text: string, patterns: readonly string[]): number {
  let cut = text.length;
  for (const pattern of patterns) {
    const first = pattern.charCodeAt(0);
    for (let at = Math.max(0, text.length - pattern.length + 1); at < cut; at++) {
      if (text.charCodeAt(at) !== first) continue;
      let i = 1;
      while (at + i < text.length && text.charCodeAt(at + i) === pattern.charCodeAt(i)) i++;
      if (at + i === text.length && i < pattern.length) {
        cut = at;
        break;
      }
    }
  }
  return cut;
}
