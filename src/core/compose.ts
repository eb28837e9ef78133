import { posix } from 'node:path';
import { quote, quotePath, shellCommand, type ShellCommand } from './quote.ts';

/**
 * What a derived context adds around a command: like Fabric's nested
 * `with cd(...)`, `with prefix(...)` and `shell_env`, but immutable.
 */
export interface Scope {
  /** Working directory; relative ones are relative to the login directory. */
  readonly cwd?: string;
  /** Commands that must succeed before the command runs, outermost first. */
  readonly prefixes: readonly ShellCommand[];
  /** Variables exported for the command (sshd drops `env` requests, so they are inlined). */
  readonly env: Readonly<Record<string, string>>;
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

/** Validate variable names once, where the author wrote them. */
export function checkEnv(vars: Record<string, string | number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(vars)) {
    if (!ENV_NAME.test(name)) throw new TypeError(`env(): ${JSON.stringify(name)} is not a valid environment variable name`);
    out[name] = String(value);
  }
  return out;
}

// A command that is itself a list (`a; b`, `a || b`, `a & b`, several lines, a
// trailing comment) would escape the `&&` chain: `cd /x && a; b` runs b even
// when cd failed. Such commands are grouped so the chain guards all of them.
const LIST_OPERATOR = /;|\|\||(^|[^&])&([^&]|$)|\n|#/;

/**
 * Turn a scope and a command into the one shell line that runs it:
 * exports first, then `cd`, then each prefix, each guarding the next with `&&`.
 *
 * @example
 * compose({ cwd: '~/Sites/alleged', prefixes: [sh`. venv/bin/activate`], env: { A: '1' } }, sh`pip install -r REQUIREMENTS`)
 * // => "export A=1 && cd ~/Sites/alleged && . venv/bin/activate && pip install -r REQUIREMENTS"
 */
export function compose(scope: Scope, command: ShellCommand): ShellCommand {
  const guards: string[] = [];
  const secrets = [...command.secrets];
  const names = Object.keys(scope.env);
  if (names.length > 0) {
    guards.push(`export ${names.map((name) => `${name}=${quote(scope.env[name] as string)}`).join(' ')}`);
  }
  if (scope.cwd !== undefined) guards.push(`cd ${quotePath(scope.cwd)}`);
  for (const prefix of scope.prefixes) {
    guards.push(prefix.text);
    secrets.push(...prefix.secrets);
  }
  if (guards.length === 0) return command;
  return shellCommand([...guards, group(command.text)].join(' && '), secrets);
}

/** `{ ...; }` keeps a list behind the guards; a newline closes it when a comment would eat `; }`. */
function group(text: string): string {
  if (!LIST_OPERATOR.test(text)) return text;
  const trimmed = text.trimEnd();
  if (text.includes('#') || text.includes('\n')) return `{ ${text}\n}`;
  return /[;&]$/.test(trimmed) ? `{ ${trimmed} }` : `{ ${trimmed}; }`;
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
  return shellCommand(`sudo ${auth} -H${user} -- sh -c ${quote(inner.text)}`, inner.secrets);
}

/**
 * True when sudo runs as `user` without asking for a password, even with no
 * cached ticket (a NOPASSWD rule). Then a known password must not be sent:
 * sudo would not read it and the command would get it on its stdin.
 */
export function sudoAsksNothing(user: string | undefined): ShellCommand {
  return shellCommand(`sudo -k -n${user ? ` -u ${quote(user)}` : ''} true`);
}
