import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { compose, EMPTY_SCOPE, joinCwd, wrapSudo, checkEnv, type Scope } from '../../src/core/compose.ts';
import { sh, shellCommand } from '../../src/core/quote.ts';
import { secret } from '../../src/core/secret.ts';

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
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const line = compose(scope({ cwd: join(dir, 'missing') }), shellCommand(`true; touch ${join(dir, 'ran')}`)).text;
    expect(() => execFileSync('/bin/sh', ['-c', line], { stdio: 'pipe' })).toThrow();
    expect(() => execFileSync('/bin/sh', ['-c', `test -e ${join(dir, 'ran')}`])).toThrow();
  });

  it('the composed line does what it says in a real shell', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
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

describe('secret environment values (issue 11)', () => {
  const PASSWORD = "pa'ss $word\\n`x`";

  it('a secret in env is read from stdin: neither the composed line nor its shown form holds it', () => {
    const line = compose(scope({ cwd: '/srv/app', env: { PGPASSWORD: secret(PASSWORD), PGUSER: 'shop' } }), sh`createdb shop`);
    expect(line.text).not.toContain('pa');
    expect(line.shown).toBe(line.text);
    expect(line.text).toContain('__df_read PGPASSWORD && ');
    expect(line.text).toMatch(/ && export PGUSER=shop && cd \/srv\/app && createdb shop$/);
    expect(line.input).toBe(`1\n${PASSWORD}\n`);
    expect(line.secrets).toContain(PASSWORD);
  });

  it('a secret passed with c.env never appears in the composed line or in ps, while the command sees it in its environment', async () => {
    const value = 'Tr0ub4dor&3-never-in-ps';
    const line = compose(scope({ env: { PGPASSWORD: secret(value) } }), sh`sleep 30`);
    const shell = spawn('/bin/sh', ['-c', line.text], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    shell.stdin.end(line.input);
    try {
      // Every process of the command seen until `sleep` runs: the shell, the $(...) subshell, sleep itself.
      const { sleeper, cmdlines } = await watchUntilSleep(shell.pid as number);
      expect(cmdlines.get(sleeper)).toBe('sleep\u000030\u0000');
      expect(cmdlines.size).toBeGreaterThanOrEqual(2);
      for (const cmdline of cmdlines.values()) expect(cmdline).not.toContain(value);
      expect(readFileSync(`/proc/${sleeper}/environ`, 'utf8').split('\0')).toContain(`PGPASSWORD=${value}`);
    } finally {
      process.kill(-(shell.pid as number), 'SIGKILL');
    }
  });

  it("multi-line secrets (a PEM key, trailing newlines) and the command's own stdin arrive intact, in dash and bash", () => {
    const pem = '-----BEGIN KEY-----\nabc\\def\n  indented \n-----END KEY-----\n\n';
    const line = compose(scope({ env: { KEY: secret(pem), EMPTY: secret(''), PLAIN: 'p' } }), sh`printf '[%s][%s][%s]' "$KEY" "$EMPTY" "$PLAIN"; cat`);
    for (const shell of ['/bin/sh', '/bin/bash']) {
      const out = execFileSync(shell, ['-c', line.text], { input: `${line.input}the command's own input\n`, encoding: 'utf8' });
      expect(out, shell).toBe(`[${pem}][][p]the command's own input\n`);
    }
  });

  it('the reading leaves no helper variable or function behind', () => {
    const line = compose(scope({ env: { A: secret('v-a') } }), shellCommand('set | grep -c __df_ || true; command -v __df_read || echo gone'));
    expect(execFileSync('/bin/sh', ['-c', line.text], { input: line.input, encoding: 'utf8' })).toBe('0\ngone\n');
  });

  it('inside c.sudo, the secret env value stays on stdin and the line is still sent whole', () => {
    const inner = compose(scope({ env: { TOKEN: secret('t0ken-value') } }), sh`id`);
    const wrapped = wrapSudo(inner, { password: true });
    expect(wrapped.text).not.toContain('t0ken-value');
    expect(wrapped.input).toBe('1\nt0ken-value\n');
    expect(wrapped.text.startsWith(`sudo -k -S -p '' -H -- sh -c '`)).toBe(true);
  });

  it('an interpolated secret is *** in the shown line at any quoting depth and any length, so c.sudo cannot leak it', () => {
    for (const value of ["it's", "a'b", 'x', "'"]) {
      const wrapped = wrapSudo(compose(scope({ cwd: '/srv' }), sh`echo ${secret(value)}`), { password: false });
      expect(wrapped.shown).toBe(`sudo -n -H -- sh -c 'cd /srv && echo ***'`);
      expect(execFileSync('/bin/sh', ['-c', `${wrapped.text.replace(/^sudo -n -H -- /, '')}`], { encoding: 'utf8' })).toBe(`${value}\n`);
    }
  });

  it('a NUL byte in a secret env value is refused where it is written', () => {
    expect(() => checkEnv({ A: secret('a\0b') })).toThrow(/NUL/);
  });
});

/** Watches the processes under `shell` (its own included) until one runs `sleep`; returns every command line seen. */
async function watchUntilSleep(shell: number): Promise<{ sleeper: number; cmdlines: Map<number, string> }> {
  const cmdlines = new Map<number, string>();
  const read = (pid: number): string | undefined => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return undefined; // already gone
    }
  };
  for (let i = 0; i < 1000; i++) {
    const pids = [shell];
    for (let at = 0; at < pids.length; at++) {
      const pid = pids[at] as number;
      const line = read(pid);
      if (line !== undefined && line !== '') cmdlines.set(pid, line);
      if (line?.startsWith('sleep')) return { sleeper: pid, cmdlines };
      try {
        pids.push(...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number));
      } catch {
        // gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`sleep never started under ${shell}`);
}
