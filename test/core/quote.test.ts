import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { quote, quotePath, raw, sh } from '../../src/core/quote.ts';
import { secret } from '../../src/core/secret.ts';

const HOSTILE = [
  'plain',
  'with space',
  "it's",
  'double " quote',
  '$(touch /tmp/deployfile-pwned)',
  '`touch /tmp/deployfile-pwned`',
  'a; rm -rf /',
  'line1\nline2',
  '$HOME',
  '*',
  '~',
  '\\backslash\\',
  '',
  '-n',
  "''",
  '\t tab',
  'ünïcödé ✓',
];

/** What a POSIX shell (dash on Debian) makes of a quoted word: printed back verbatim. */
function roundTrip(word: string): string {
  return execFileSync('/bin/sh', ['-c', `printf '%s' ${word}`], { encoding: 'utf8' });
}

describe('quote', () => {
  it.each(HOSTILE)('a hostile value reaches the shell as one literal word: %j', (value) => {
    expect(roundTrip(quote(value))).toBe(value);
  });

  it('leaves harmless words bare so dry-run output stays readable', () => {
    expect(quote('feature/x-1.2')).toBe('feature/x-1.2');
    expect(quote('git@github.com:me/repo.git')).toBe('git@github.com:me/repo.git');
  });

  it('never uses bash-only $\'...\' quoting (dash does not know it)', () => {
    for (const value of HOSTILE) expect(quote(value)).not.toMatch(/\$'/);
  });
});

describe('quotePath', () => {
  it('keeps ~ live so the remote shell expands it, and quotes the rest', () => {
    expect(quotePath('~/Sites/my site')).toBe("~/'Sites/my site'");
    expect(quotePath('~')).toBe('~');
    expect(quotePath('/srv/a b')).toBe("'/srv/a b'");
    const home = execFileSync('/bin/sh', ['-c', `printf '%s' ${quotePath('~/x y')}`], { encoding: 'utf8', env: { HOME: '/home/alleged' } });
    expect(home).toBe('/home/alleged/x y');
  });
});

describe('sh tagged template', () => {
  it('quotes every interpolated value, whatever it contains', () => {
    for (const value of HOSTILE) {
      const cmd = sh`printf '%s' ${value}`;
      expect(execFileSync('/bin/sh', ['-c', cmd.text], { encoding: 'utf8' })).toBe(value);
    }
  });

  it('turns arrays into several quoted words', () => {
    const cmd = sh`printf '[%s]' ${['a b', "c'd", '$(x)']}`;
    expect(execFileSync('/bin/sh', ['-c', cmd.text], { encoding: 'utf8' })).toBe("[a b][c'd][$(x)]");
  });

  it('inserts raw() text and nested sh commands unquoted: the explicit opt-out', () => {
    expect(sh`rm -f ${raw('*.pyc')}`.text).toBe('rm -f *.pyc');
    expect(sh`sudo ${sh`ls ${'a b'}`}`.text).toBe("sudo ls 'a b'");
  });

  it('remembers secrets so they can be masked, and shows *** when printed as a value', () => {
    const password = secret('hunter2!');
    const cmd = sh`mysql --password=${password}`;
    expect(cmd.text).toBe("mysql --password='hunter2!'");
    expect(cmd.secrets).toEqual(['hunter2!']);
    expect(String(password)).toBe('***');
    expect(JSON.stringify({ password })).toBe('{"password":"***"}');
  });

  it('refuses undefined and null instead of silently dropping them', () => {
    expect(() => sh`rm -rf ~/${undefined as unknown as string}`).toThrow(/cannot interpolate undefined/);
    expect(() => sh`echo ${null as unknown as string}`).toThrow(/cannot interpolate null/);
  });
});
