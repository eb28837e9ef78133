import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compose, EMPTY_SCOPE, joinCwd, wrapSudo, checkEnv, type Scope } from '../../src/core/compose.ts';
import { sh, shellCommand } from '../../src/core/quote.ts';

const scope = (over: Partial<Scope>): Scope => ({ ...EMPTY_SCOPE, ...over });

describe('compose (golden lines)', () => {
  it('leaves a command alone when the context adds nothing', () => {
    expect(compose(EMPTY_SCOPE, sh`git pull`).text).toBe('git pull');
  });

  it('cd guards the command', () => {
    expect(compose(scope({ cwd: '/home/alleged/Sites/alleged' }), sh`git pull --ff-only`).text).toBe('cd /home/alleged/Sites/alleged && git pull --ff-only');
  });

  it('prefixes run in order after cd, like nested with cd(): with prefix():', () => {
    const s = scope({ cwd: '~/Sites/alleged', prefixes: [sh`. ~/virtualenvs/alleged/bin/activate`, sh`umask 022`] });
    expect(compose(s, sh`pip install -r REQUIREMENTS`).text).toBe(
      'cd ~/Sites/alleged && . ~/virtualenvs/alleged/bin/activate && umask 022 && pip install -r REQUIREMENTS',
    );
  });

  it('env is exported inline first (sshd drops env requests without AcceptEnv)', () => {
    const s = scope({ cwd: '/srv/app', env: { DJANGO_SETTINGS_MODULE: 'alleged.settings', GREETING: "it's me" } });
    expect(compose(s, sh`./manage.py check`).text).toBe(
      "export DJANGO_SETTINGS_MODULE=alleged.settings GREETING='it'\\''s me' && cd /srv/app && ./manage.py check",
    );
  });

  it('quotes directories with spaces and keeps ~ live', () => {
    expect(compose(scope({ cwd: '~/My Sites/a' }), sh`ls`).text).toBe("cd ~/'My Sites/a' && ls");
  });

  it('groups a command list so a failed cd stops all of it', () => {
    expect(compose(scope({ cwd: '/x' }), shellCommand('make; rm -rf build')).text).toBe('cd /x && { make; rm -rf build; }');
    expect(compose(scope({ cwd: '/x' }), shellCommand('test -f a || touch a')).text).toBe('cd /x && { test -f a || touch a; }');
    expect(compose(scope({ cwd: '/x' }), shellCommand('sleep 1 &')).text).toBe('cd /x && { sleep 1 & }');
    expect(compose(scope({ cwd: '/x' }), shellCommand('a && b | c')).text).toBe('cd /x && a && b | c');
    expect(compose(scope({ cwd: '/x' }), shellCommand('make # build it')).text).toBe('cd /x && { make # build it\n}');
  });

  it('a failed cd really stops a grouped list (run in /bin/sh)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    const line = compose(scope({ cwd: join(dir, 'missing') }), shellCommand(`true; touch ${join(dir, 'ran')}`)).text;
    expect(() => execFileSync('/bin/sh', ['-c', line], { stdio: 'pipe' })).toThrow();
    expect(() => execFileSync('/bin/sh', ['-c', `test -e ${join(dir, 'ran')}`])).toThrow();
  });

  it('the composed line does what it says in a real shell', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    mkdirSync(join(dir, 'code dir'));
    writeFileSync(join(dir, 'activate'), 'export ACTIVATED=yes\n');
    const s = scope({ cwd: join(dir, 'code dir'), prefixes: [sh`. ${join(dir, 'activate')}`], env: { TOKEN: 'a b$c' } });
    const out = execFileSync('/bin/sh', ['-c', compose(s, shellCommand('printf "%s|%s|%s" "$PWD" "$ACTIVATED" "$TOKEN"')).text], { encoding: 'utf8' });
    expect(out).toBe(`${join(dir, 'code dir')}|yes|a b$c`);
  });
});

describe('joinCwd', () => {
  it('joins relative dirs and lets absolute and ~ dirs replace', () => {
    expect(joinCwd(undefined, 'Sites')).toBe('Sites');
    expect(joinCwd('~/Sites', 'alleged')).toBe('~/Sites/alleged');
    expect(joinCwd('/srv/a', '../b')).toBe('/srv/b');
    expect(joinCwd('/srv/a', '/etc')).toBe('/etc');
    expect(joinCwd('/srv/a', '~/x')).toBe('~/x');
  });

  it('refuses an empty directory', () => {
    expect(() => joinCwd('/a', '')).toThrow(/empty/);
  });
});

describe('env names', () => {
  it('refuses names a shell could not export', () => {
    expect(() => checkEnv({ 'A-B': '1' })).toThrow(/not a valid environment variable name/);
    expect(() => checkEnv({ 'X;rm': '1' })).toThrow();
    expect(checkEnv({ PORT: 8000 })).toEqual({ PORT: '8000' });
  });
});

describe('wrapSudo', () => {
  it('runs the whole composed line as the target user in sh -c', () => {
    const inner = compose(scope({ cwd: '/srv/app' }), sh`touch ${'a b'}`);
    expect(wrapSudo(inner, { user: 'www-data', password: false }).text).toBe(`sudo -n -H -u www-data -- sh -c 'cd /srv/app && touch '\\''a b'\\'''`);
    expect(wrapSudo(sh`id`, { password: true }).text).toBe(`sudo -k -S -p '' -H -- sh -c id`);
  });
});
