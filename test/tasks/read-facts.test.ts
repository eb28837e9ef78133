import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { factsScript, parseFacts } from '../../tasks/read-facts.ts';

/** The script through the system's /bin/sh (dash on Debian), as a server runs it. */
function run(commands: Record<string, string>, setup: string[] = []) {
  const result = spawnSync('/bin/sh', ['-c', factsScript(commands, setup)], { encoding: 'utf8', input: 'stdin the commands must not read\n' });
  return { status: result.status, facts: parseFacts(Object.keys(commands), result.stdout, result.stderr) };
}

describe('several read-only commands in one shell command', () => {
  it("gives each command's stdout exactly, its stderr apart, and its exit code", () => {
    const { status, facts } = run({
      line: 'echo abc',
      bare: "printf 'no newline'",
      empty: 'true',
      lines: "printf 'a\\n\\nb\\n'",
      failed: 'echo partial; echo "fatal: no upstream" >&2; exit 3',
      code: 'sh -c "exit 1"',
      stdin: 'cat',
    });
    expect(status).toBe(0);
    expect(facts.line).toEqual({ exitCode: 0, stdout: 'abc\n', stderr: '' });
    expect(facts.bare).toEqual({ exitCode: 0, stdout: 'no newline', stderr: '' });
    expect(facts.empty).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    expect(facts.lines?.stdout).toBe('a\n\nb\n');
    expect(facts.failed).toEqual({ exitCode: 3, stdout: 'partial\n', stderr: 'fatal: no upstream\n' });
    expect(facts.code?.exitCode).toBe(1);
    expect(facts.stdin).toEqual({ exitCode: 0, stdout: '', stderr: '' });
  });

  it('runs each command whatever an earlier one did, and lets one use what a setup line set', () => {
    const { facts } = run({ first: 'exit 9', second: 'echo "rev=$rev"' }, ['rev=$(echo 1234)']);
    expect(facts.first?.exitCode).toBe(9);
    expect(facts.second?.stdout).toBe('rev=1234\n');
  });

  it('says which answer is missing when the output was cut short', () => {
    const script = factsScript({ a: 'echo 1', b: 'echo 2' });
    const full = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' }).stdout;
    expect(() => parseFacts(['a', 'b'], full.slice(0, full.indexOf('@@deployfile-fact:b@@')), '')).toThrow('the answer to "b" is missing');
  });

  it('refuses a fact name that would break its markers', () => {
    expect(() => factsScript({ 'a b': 'true' })).toThrow('fact names are letters, digits and _');
  });
});
