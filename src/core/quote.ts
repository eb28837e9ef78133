import { isSecret, MASK, type Secret } from './secret.ts';

// Brands use Symbol.for so that two copies of this module (the CLI's own and
// the one jiti loads for a user's deployfile) still recognise each other.
const COMMAND = Symbol.for('deployfile.command');
const RAW = Symbol.for('deployfile.raw');

/**
 * A shell command line that has been built safely: every interpolated value
 * was quoted, and the secret values it contains are remembered for redaction.
 *
 * @example
 * const cmd = sh`git checkout ${ref}`; // cmd.text === "git checkout 'feature/x y'"
 */
export interface ShellCommand {
  readonly [COMMAND]: true;
  /** The exact text the shell receives. */
  readonly text: string;
  /** Secret values inside `text` (or sent as `input`), to be replaced by `***` wherever they are shown. */
  readonly secrets: readonly string[];
  /**
   * `text` as views, events, errors and `--dry-run` show it: each interpolated
   * secret is `***` exactly where it sits, at any quoting depth and any length.
   */
  readonly shown: string;
  /**
   * What the line reads from its stdin before the command's own input: the
   * values of secret environment variables (see `compose`). Usually ''.
   */
  readonly input: string;
  toString(): string;
}

/** A piece of shell text inserted as-is: the explicit opt-out of quoting. */
export interface RawShell {
  readonly [RAW]: true;
  readonly text: string;
}

/** Anything a `run`, `local` or `sudo` call accepts as its command. */
export type CommandInput = string | ShellCommand;

/** A value a tagged template may interpolate. */
export type ShellValue =
  | string
  | number
  | bigint
  | Secret
  | ShellCommand
  | RawShell
  | readonly (string | number | Secret)[];

const SAFE = /^[A-Za-z0-9_\/.,:@%+=-]+$/;

/**
 * Quote one value for a POSIX shell (dash included): single quotes, with
 * embedded single quotes closed, escaped and reopened. Values made only of
 * harmless characters are left bare so dry-run output stays readable.
 *
 * @example
 * quote("it's") // => 'it'\''s'
 */
export function quote(value: string): string {
  if (value !== '' && SAFE.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Quote a path, keeping a leading `~` or `~/` live so the remote shell
 * expands it to the site user's home.
 *
 * @example
 * quotePath('~/Sites/my site') // => ~/'Sites/my site'
 */
export function quotePath(path: string): string {
  if (path === '~') return '~';
  if (path.startsWith('~/')) return `~/${quote(path.slice(2))}`;
  return quote(path);
}

/** Build a ShellCommand from already-safe text (`shown` defaults to `text`, `input` to ''). */
export function shellCommand(text: string, secrets: readonly string[] = [], more: { shown?: string; input?: string } = {}): ShellCommand {
  return { [COMMAND]: true, text, secrets, shown: more.shown ?? text, input: more.input ?? '', toString: () => text };
}

/** True when `value` was built by `sh` (or `shellCommand`). */
export function isShellCommand(value: unknown): value is ShellCommand {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[COMMAND] === true;
}

/**
 * Insert text into a `sh` template without quoting. Use it only for text you
 * wrote yourself (a glob, a redirection), never for values from outside.
 *
 * @example
 * sh`rm -f ${raw('*.pyc')}`
 */
export function raw(text: string): RawShell {
  return { [RAW]: true, text };
}

function isRaw(value: unknown): value is RawShell {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[RAW] === true;
}

/** One value as [what the shell gets, what is shown]. */
function render(value: ShellValue, secrets: string[]): [text: string, shown: string] {
  if (typeof value === 'string') return same(quote(value));
  if (typeof value === 'number' || typeof value === 'bigint') return same(quote(String(value)));
  if (isSecret(value)) {
    secrets.push(value.reveal());
    return [quote(value.reveal()), MASK];
  }
  if (isShellCommand(value)) {
    if (value.input !== '') throw new TypeError('a command that reads secret environment values from stdin cannot be nested in sh`...`; use c.env() on the context instead');
    secrets.push(...value.secrets);
    return [value.text, value.shown];
  }
  if (isRaw(value)) return same(value.text);
  if (Array.isArray(value)) {
    const items = value.map((item) => render(item, secrets));
    return [items.map((item) => item[0]).join(' '), items.map((item) => item[1]).join(' ')];
  }
  // undefined and null reach here from untyped code: running `rm -rf ${undefined}`
  // with the value silently dropped is exactly the accident quoting exists to stop.
  throw new TypeError(`cannot interpolate ${value === null ? 'null' : typeof value} into a shell command`);
}

/**
 * Tagged template that quotes every interpolated value for a POSIX shell.
 * Arrays become several quoted words; `raw(...)` opts out; a nested `sh`
 * command is inserted as-is.
 *
 * @example
 * sh`git checkout ${ref} -- ${files}` // each value is a single literal word
 */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): ShellCommand {
  const secrets: string[] = [];
  let text = strings[0] ?? '';
  let shown = text;
  values.forEach((value, i) => {
    const [valueText, valueShown] = render(value, secrets);
    text += valueText + (strings[i + 1] ?? '');
    shown += valueShown + (strings[i + 1] ?? '');
  });
  return shellCommand(text, secrets, { shown });
}

function same(text: string): [string, string] {
  return [text, text];
}

/** True when the arguments of a call look like a tagged-template call. */
export function isTemplateCall(first: unknown): first is TemplateStringsArray {
  return Array.isArray(first) && Object.prototype.hasOwnProperty.call(first, 'raw');
}

/** Normalise a string, a ShellCommand or a tagged-template call into a ShellCommand. */
export function toShellCommand(first: CommandInput | TemplateStringsArray, values: ShellValue[] = []): ShellCommand {
  if (isTemplateCall(first)) return sh(first, ...values);
  if (isShellCommand(first)) return first;
  if (typeof first === 'string') return shellCommand(first);
  throw new TypeError(`expected a command string or sh\`...\`, got ${typeof first}`);
}
