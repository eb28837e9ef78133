import { posix } from 'node:path';
import { quote, quotePath, shellCommand, type ShellCommand } from './quote.ts';
import { isSecret, type Secret } from './secret.ts';

/**
 * What a derived context adds around a command: like Fabric's nested
 * `with cd(...)`, `with prefix(...)` and `shell_env`, but immutable.
 */
export interface Scope {
  /** Working directory; relative ones are relative to the login directory. */
  readonly cwd?: string;
  /** Commands that must succeed before the command runs, outermost first. */
  readonly prefixes: readonly ShellCommand[];
  /**
   * Variables exported for the command (sshd drops `env` requests, so plain
   * ones are inlined); secret ones are read from stdin, off the command line.
   */
  readonly env: Readonly<Record<string, string | Secret>>;
}

export const EMPTY_SCOPE: Scope = { prefixes: [], env: {} };

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The working directory after `cd(dir)`: absolute and `~` paths replace it,
 * relative ones join onto it, as `cd` does in a shell.
 */
export function joinCwd(current: string | undefined, dir: string): string {
  if (dir === '') throw new TypeError('cd() needs a directory, got an empty string');
  if (current === undefined || dir.startsWith('/') || dir === '~' || dir.startsWith('~/')) return dir;
  return posix.join(current, dir);
}

/** Validate variable names once, where the author wrote them; secrets stay secrets. */
export function checkEnv(vars: Record<string, string | number | Secret>): Record<string, string | Secret> {
  const out: Record<string, string | Secret> = {};
  for (const [name, value] of Object.entries(vars)) {
    if (!ENV_NAME.test(name)) throw new TypeError(`env(): ${JSON.stringify(name)} is not a valid environment variable name`);
    // A shell variable cannot hold a NUL byte: the value would arrive cut short.
    if (isSecret(value) && value.reveal().includes('\0')) throw new TypeError(`env(): the secret value of ${name} contains a NUL byte, which no shell variable can hold`);
    out[name] = isSecret(value) ? value : String(value);
  }
  return out;
}

// Reads one secret value from stdin into an exported variable, with shell
// builtins only (read, and `[` / $(( )) on the line count, never the value),
// so it is on no command line: not the shell's, not a child's. The value comes
// as its number of lines, then the lines: any value without NUL, multi-line
// ones (a PEM key) and trailing newlines included. POSIX sh (dash too).
const READ_SECRET =
  `__df_nl=$(printf '\\nx') && __df_nl=\${__df_nl%x} && ` +
  `__df_read() { IFS= read -r __df_n && __df_v= && while [ "$__df_n" -gt 1 ]; do IFS= read -r __df_l || return 1; __df_v=$__df_v$__df_l$__df_nl; __df_n=$((__df_n - 1)); done && IFS= read -r __df_l && eval "$1=\\$__df_v\\$__df_l" && export "$1"; }`;
const READ_SECRET_END = 'unset -f __df_read && unset __df_n __df_v __df_l __df_nl';

/** A secret as `compose` sends it on stdin: its line count, then its lines. */
export function secretInput(value: string): string {
  return `${value.split('\n').length}\n${value}\n`;
}

// A command that is itself a list (`a; b`, `a || b`, `a & b`, several lines, a
// trailing comment) would escape the `&&` chain: `cd /x && a; b` runs b even
// when cd failed. Such commands are grouped so the chain guards all of them.
const LIST_OPERATOR = /;|\|\||(^|[^&])&([^&]|$)|\n|#/;

/**
 * Turn a scope and a command into the one shell line that runs it:
 * secret variables read from stdin, exports, then `cd`, then each prefix,
 * each guarding the next with `&&`. Secret variables' values go in `input`,
 * which the runner sends on the command's stdin ahead of its own input.
 *
 * @example
 * compose({ cwd: '~/Sites/alleged', prefixes: [sh`. venv/bin/activate`], env: { A: '1' } }, sh`pip install -r REQUIREMENTS`)
 * // => "export A=1 && cd ~/Sites/alleged && . venv/bin/activate && pip install -r REQUIREMENTS"
 * compose({ prefixes: [], env: { PGPASSWORD: secret(pw) } }, sh`createdb shop`)
 * // => "__df_nl=... && __df_read PGPASSWORD && unset ... && createdb shop", input: "1\n<pw>\n"
 */
export function compose(scope: Scope, command: ShellCommand): ShellCommand {
  if (command.input !== '') throw new TypeError('compose(): the command already reads secret values from stdin');
  const guards: { text: string; shown: string }[] = [];
  const guard = (text: string, shown = text): number => guards.push({ text, shown });
  const secrets = [...command.secrets];
  let input = '';
  const names = Object.keys(scope.env);
  const hidden = names.filter((name) => isSecret(scope.env[name]));
  const plain = names.filter((name) => !isSecret(scope.env[name]));
  if (hidden.length > 0) {
    guard(READ_SECRET);
    for (const name of hidden) {
      const value = (scope.env[name] as Secret).reveal();
      guard(`__df_read ${name}`);
      input += secretInput(value);
      secrets.push(value);
    }
    guard(READ_SECRET_END);
  }
  if (plain.length > 0) {
    guard(`export ${plain.map((name) => `${name}=${quote(scope.env[name] as string)}`).join(' ')}`);
  }
  // `./` keeps a directory named like an option (`-P`, `-`) from being read as one (`cd -P` goes $HOME).
  if (scope.cwd !== undefined) guard(`cd ${quotePath(scope.cwd.startsWith('-') ? `./${scope.cwd}` : scope.cwd)}`);
  for (const prefix of scope.prefixes) {
    if (prefix.input !== '') throw new TypeError('prefix(): a command that reads secret values from stdin cannot be a prefix');
    guard(prefix.text, prefix.shown);
    secrets.push(...prefix.secrets);
  }
  if (guards.length === 0) return command;
  const [text, shown] = group(command);
  return shellCommand([...guards.map((g) => g.text), text].join(' && '), secrets, {
    shown: [...guards.map((g) => g.shown), shown].join(' && '),
    input,
  });
}

/**
 * `{ ...; }` keeps a list behind the guards; a newline closes it when a comment would eat `; }`.
 * Decided on the real text; the shown text gets the same braces.
 */
function group(command: ShellCommand): [text: string, shown: string] {
  const { text, shown } = command;
  if (!LIST_OPERATOR.test(text)) return [text, shown];
  if (text.includes('#') || text.includes('\n')) return [`{ ${text}\n}`, `{ ${shown}\n}`];
  const close = (t: string): string => (/[;&]$/.test(t.trimEnd()) ? `{ ${t.trimEnd()} }` : `{ ${t.trimEnd()}; }`);
  return [close(text), close(shown)];
}

/**
 * Wrap a composed command for sudo: the whole line (exports, cd, prefixes)
 * runs inside `sh -c` as the target user, so every part of it is elevated.
 * With a password, `-k -S -p ''` makes sudo read it from stdin every time:
 * `-k` ignores a cached ticket, which would otherwise leave the password on
 * stdin for the command to read. Without one, `-n` fails fast instead of
 * waiting for a terminal that isn't there.
 */
export function wrapSudo(inner: ShellCommand, options: { user?: string; password: boolean }): ShellCommand {
  const auth = options.password ? `-k -S -p ''` : '-n';
  const user = options.user ? ` -u ${quote(options.user)}` : '';
  const head = `sudo ${auth} -H${user} -- sh -c `;
  // The password, when sent, goes ahead of `input` on stdin: sudo reads its one line, sh -c the rest.
  return shellCommand(head + quote(inner.text), inner.secrets, { shown: head + quote(inner.shown), input: inner.input });
}

/**
 * True when sudo runs as `user` without asking for a password, even with no
 * cached ticket (a NOPASSWD rule). Then a known password must not be sent:
 * sudo would not read it and the command would get it on its stdin.
 */
export function sudoAsksNothing(user: string | undefined): ShellCommand {
  return shellCommand(`sudo -k -n${user ? ` -u ${quote(user)}` : ''} true`);
}
