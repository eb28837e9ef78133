import type { Context } from '../src/index.ts';

/** What one read-only command printed, and how it ended. */
export interface Fact {
  exitCode: number;
  stdout: string;
  stderr: string;
}

const START = '@@deployfile-fact:';
const END = '@@deployfile-fact-end:';

/**
 * Several read-only commands as one shell command, so that they cost one
 * SSH session instead of one each: a session is the dearest thing a step
 * does (sshd forks, logs the user in, starts a shell), and `fetch` asked
 * seven questions of git, one session each. Each command runs in order,
 * in a subshell (an `exit` ends only it), whatever an earlier one did,
 * with no stdin; its stdout and stderr stay
 * apart, each stream cut by a marker printed on both, and its exit code
 * follows its stdout. A command may use a shell variable that an earlier
 * `setup` line set.
 *
 * @example
 * factsScript({ head: 'git rev-parse HEAD' }, ['rev=$(git rev-parse @{upstream} 2>/dev/null)'])
 */
export function factsScript(commands: Record<string, string>, setup: string[] = []): string {
  const lines = [...setup];
  for (const [name, command] of Object.entries(commands)) {
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new TypeError(`factsScript: fact names are letters, digits and _ (got ${JSON.stringify(name)})`);
    // The echo before the end marker puts it on a line of its own, whether or not the output ended with a newline; parseFacts takes that newline off again.
    lines.push(`echo '${START}${name}@@'; echo '${START}${name}@@' >&2; ( ${command}\n) </dev/null; __df_rc=$?; echo; echo "${END}${name}:$__df_rc@@"`);
  }
  return lines.join('\n');
}

/** Each fact of {@link factsScript}'s output; throws when one is missing (the script was cut short). */
export function parseFacts(names: readonly string[], stdout: string, stderr: string): Record<string, Fact> {
  const facts: Record<string, Fact> = {};
  for (const name of names) {
    const start = `${START}${name}@@\n`;
    const from = stdout.indexOf(start);
    const end = from < 0 ? -1 : stdout.indexOf(`\n${END}${name}:`, from + start.length - 1);
    if (end < 0) throw new Error(`the answer to "${name}" is missing from the output`);
    const code = /^(\d+)@@/.exec(stdout.slice(end + `\n${END}${name}:`.length));
    const errFrom = stderr.indexOf(start);
    const errTo = errFrom < 0 ? -1 : stderr.indexOf(START, errFrom + start.length);
    facts[name] = {
      exitCode: code ? Number(code[1]) : -1,
      stdout: stdout.slice(from + start.length, end),
      stderr: errFrom < 0 ? '' : stderr.slice(errFrom + start.length, errTo < 0 ? undefined : errTo),
    };
  }
  return facts;
}

/**
 * Run {@link factsScript} on the site (in `c`'s directory and scope) and
 * return each answer. Shown in the views as `label`; `--json` and
 * `--dry-run` still show the exact script.
 */
export async function readFacts<K extends string>(c: Context, label: string, commands: Record<K, string>, setup: string[] = []): Promise<Record<K, Fact>> {
  const result = await c.run(factsScript(commands, setup), { quiet: true, label });
  try {
    return parseFacts(Object.keys(commands), result.stdout, result.stderr) as Record<K, Fact>;
  } catch (error) {
    throw new Error(`${label}: ${(error as Error).message}; the server printed:\n${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}`);
  }
}
