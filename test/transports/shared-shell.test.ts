import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { heldBack, NOT_STARTED, SharedShell, SHELL_SETUP, ShellChannelError, shellLine, type ShellChannel } from '../../src/transports/shared-shell.ts';
import type { ExecResult } from '../../src/transports/transport.ts';

/** Process groups of the local shells a test started, ended after it. */
const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A shared shell over a local `/bin/sh -s`, the same program the SSH transport starts on the server. */
function localShell(env: NodeJS.ProcessEnv = process.env): { shell: SharedShell } {
  const shell = new SharedShell(
    (onStdout, onStderr) => {
      const child = spawn('/bin/sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
      started.push(child.pid!);
      child.stdout.setEncoding('utf8').on('data', onStdout);
      child.stderr.setEncoding('utf8').on('data', onStderr);
      const ended = new Promise<ExecResult>((resolve) => child.on('close', (code, signal) => resolve({ exitCode: code, signal: signal ? signal.replace(/^SIG/, '') : null })));
      return {
        write: (text) => child.stdin.write(text),
        // Like sshd's killpg of the session: the shell and what it runs.
        stop: () => process.kill(-child.pid!, 'SIGTERM'),
        end: () => child.stdin.end(),
        ended,
      };
    },
    (command) => new Error(`lost during: ${command}`),
  );
  return { shell };
}

async function collect(shell: SharedShell, command: string, signal?: AbortSignal): Promise<{ result: ExecResult | typeof NOT_STARTED; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const result = await shell.run(command, { onStdout: (c) => (stdout += c), onStderr: (c) => (stderr += c), signal });
  return { result, stdout, stderr };
}

/** A channel the test writes the server's side of by hand, chunk by chunk. */
function scriptedChannel(): { channel: ShellChannel; written: string[]; stopped: () => boolean; closed: () => boolean; end(result: ExecResult): void; fail(error: Error): void; out(s: string): void; err(s: string): void; open(o: (s: string) => void, e: (s: string) => void): ShellChannel } {
  const written: string[] = [];
  let stopped = false;
  let closed = false;
  let onOut: (s: string) => void = () => {};
  let onErr: (s: string) => void = () => {};
  let resolve!: (r: ExecResult) => void;
  let reject!: (e: Error) => void;
  const ended = new Promise<ExecResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const channel: ShellChannel = { write: (t) => written.push(t), stop: () => (stopped = true), end: () => (closed = true), ended };
  return {
    channel,
    written,
    stopped: () => stopped,
    closed: () => closed,
    end: resolve,
    fail: reject,
    out: (s) => onOut(s),
    err: (s) => onErr(s),
    open: (o, e) => {
      onOut = o;
      onErr = e;
      return channel;
    },
  };
}

/** The token of the last command written to a scripted channel (after the shell's setup line). */
function tokenOf(written: string[]): string {
  expect(written[0]).toBe(SHELL_SETUP);
  return /^printf '%s\\n' '([^']+)\+'/.exec(written.at(-1)!)![1]!;
}

describe('the shared shell, over a local /bin/sh', () => {
  it('runs commands one after another in one shell, each with its own output and exit status', async () => {
    const { shell } = localShell();
    expect(await collect(shell, 'echo out; echo err >&2; exit 3')).toEqual({ result: { exitCode: 3, signal: null }, stdout: 'out\n', stderr: 'err\n' });
    expect(await collect(shell, 'true')).toEqual({ result: { exitCode: 0, signal: null }, stdout: '', stderr: '' });
    expect(shell.idle).toBe(true);
  });

  it('passes output on byte for byte: no trailing newline added or lost, quotes and markers-alike text intact', async () => {
    const { shell } = localShell();
    expect((await collect(shell, `printf 'no newline'`)).stdout).toBe('no newline');
    expect((await collect(shell, `printf 'two\\n\\n'`)).stdout).toBe('two\n\n');
    expect((await collect(shell, `echo "it's \\$HOME"; printf '\\ndeployfile- 0\\n'`)).stdout).toBe(`it's $HOME\n\ndeployfile- 0\n`);
    // A line printed whole arrives whole: nothing held back that cannot begin the end token.
    const chunks: string[] = [];
    await shell.run('echo whole', { onStdout: (c) => chunks.push(c) });
    expect(chunks).toEqual(['whole\n']);
  });

  it('keeps nothing between commands: a cd, a variable or an exit stays in its own command', async () => {
    const { shell } = localShell();
    await collect(shell, 'cd /; X=set; export Y=set');
    expect((await collect(shell, 'echo "$(pwd) ${X:-unset} ${Y:-unset}"')).stdout).toBe(`${process.cwd()} unset unset\n`);
    expect((await collect(shell, 'exit 0')).result).toEqual({ exitCode: 0, signal: null });
    expect((await collect(shell, 'echo still here')).stdout).toBe('still here\n');
  });

  it('gives a command end of file on stdin, not the lines meant for the shell', async () => {
    const { shell } = localShell();
    expect(await collect(shell, 'cat; echo after')).toMatchObject({ result: { exitCode: 0 }, stdout: 'after\n' });
    expect((await collect(shell, 'echo next')).stdout).toBe('next\n');
  });

  it('writes stdin to the command through a pipe, then closes it; quotes, newlines and all', async () => {
    const { shell } = localShell();
    let stdout = '';
    const result = await shell.run('cat; echo done', { stdin: `it's "x"\n$HOME\nno newline`, onStdout: (c) => (stdout += c) });
    expect(result).toEqual({ exitCode: 0, signal: null });
    expect(stdout).toBe(`it's "x"\n$HOME\nno newlinedone\n`);
  });

  it("runs the tool's own scripts in a subshell, without the user's shell; still nothing carries over", async () => {
    // A login shell that cannot run anything: a command needs it, the tool's own script does not.
    const { shell } = localShell({ ...process.env, SHELL: '/nonexistent/shell' });
    expect((await collect(shell, 'echo user')).result).toEqual({ exitCode: 127, signal: null });
    let stdout = '';
    const own = (script: string, stdin?: string) => shell.run(script, { ownScript: true, stdin, onStdout: (c) => (stdout += c) });
    expect(await own('cd /; X=set; umask 077; echo "$(pwd) $X"; exit 3')).toEqual({ exitCode: 3, signal: null });
    expect(await own('IFS= read -r l; printf "%s|%s|%s|%s\\n" "$l" "$(pwd)" "${X:-unset}" "$(umask)"', `  it's \\ "x"\n`)).toEqual({ exitCode: 0, signal: null });
    const umask = process.umask().toString(8).padStart(4, '0');
    expect(stdout).toBe(`/ set\n  it's \\ "x"|${process.cwd()}|unset|${umask}\n`);
    // A syntax error ends the script, not the shell it ran in.
    expect(await own('if then')).toEqual({ exitCode: 2, signal: null });
    expect(await own('echo alive')).toEqual({ exitCode: 0, signal: null });
    expect(stdout.endsWith('alive\n')).toBe(true);
  });

  it('a timeout ends a command that ignores TERM too: the shell under it waits for the KILL', async () => {
    const { shell } = localShell();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const running = collect(shell, 'trap "" TERM; sleep 30', controller.signal);
    // The server's KILL after the grace period, as sshd delivers it: to the whole group.
    setTimeout(() => process.kill(-started.at(-1)!, 'SIGKILL'), 1000);
    const began = Date.now();
    expect((await running).result).toMatchObject({ signal: 'KILL' });
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
  });

  it('reports a command killed by a signal as that signal, and no exit code', async () => {
    const { shell } = localShell();
    expect((await collect(shell, 'kill -TERM $$')).result).toEqual({ exitCode: null, signal: 'TERM' });
    expect((await collect(shell, 'exit 255')).result).toEqual({ exitCode: 255, signal: null });
  });

  it('on abort ends the shell with the command in it, keeps what it printed, and then is no longer used', async () => {
    const { shell } = localShell();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const { result, stdout } = await collect(shell, 'echo started; sleep 30; echo never', controller.signal);
    expect(stdout).toBe('started\n');
    expect(result).toEqual({ exitCode: null, signal: 'TERM' });
    expect(shell.alive).toBe(false);
  });

  it('says a command never started when the shell cannot run it (a shell that exits first)', async () => {
    const scripted = scriptedChannel();
    const shell = new SharedShell(scripted.open, (c) => new Error(c));
    const running = shell.run('true', {});
    scripted.end({ exitCode: 1, signal: null });
    expect(await running).toBe(NOT_STARTED);
    expect(shell.worked).toBe(false);
  });
});

describe('the shared shell, reading a stream split anywhere', () => {
  it('gives the same output and status wherever the chunks break, holding back only what may be an end line', async () => {
    const body = 'line one\nline \u00e9 two\n\nlast';
    for (let cut = 0; cut < 80; cut += 3) {
      const scripted = scriptedChannel();
      const shell = new SharedShell(scripted.open, (c) => new Error(c));
      let stdout = '';
      let stderr = '';
      const running = shell.run('x', { onStdout: (c) => (stdout += c), onStderr: (c) => (stderr += c) });
      const token = tokenOf(scripted.written);
      const out = `${body}${token} 7 \n`;
      const err = `${token}+\nwarning${token}\n`;
      for (const [text, push] of [
        [out, scripted.out],
        [err, scripted.err],
      ] as const) {
        const at = Math.min(cut, text.length);
        push(text.slice(0, at));
        push(text.slice(at));
      }
      expect(await running).toEqual({ exitCode: 7, signal: null });
      expect(stdout).toBe(body);
      expect(stderr).toBe('warning');
    }
  });

  it('streams output as it comes, before the command ends', async () => {
    const scripted = scriptedChannel();
    const shell = new SharedShell(scripted.open, (c) => new Error(c));
    const chunks: string[] = [];
    void shell.run('x', { onStdout: (c) => chunks.push(c) });
    scripted.out('progress 1\n');
    scripted.out('progress 2\ndeploy');
    // Only what could begin the end token waits for the next chunk.
    expect(chunks).toEqual(['progress 1\n', 'progress 2\n']);
    scripted.out('ing\n');
    expect(chunks.join('')).toBe('progress 1\nprogress 2\ndeploying\n');
    expect(shell.idle).toBe(false);
  });

  it('a connection lost after the command started is an error naming it; lost before, too (it may have started)', async () => {
    for (const acked of [true, false]) {
      const scripted = scriptedChannel();
      const shell = new SharedShell(scripted.open, (command) => new Error(`lost during: ${command}`));
      const running = shell.run('git pull', {});
      if (acked) scripted.err(`${tokenOf(scripted.written)}+\n`);
      scripted.fail(new ShellChannelError('Connection lost', false));
      await expect(running).rejects.toThrow('lost during: git pull');
      expect(shell.alive).toBe(false);
    }
  });

  it('a channel the server refused never ran the command: it is run another way', async () => {
    const scripted = scriptedChannel();
    const shell = new SharedShell(scripted.open, (c) => new Error(c));
    const running = shell.run('true', {});
    scripted.fail(new ShellChannelError('open failed', true));
    expect(await running).toBe(NOT_STARTED);
  });

  it('an abort stops the shell, and the command ends with the shell', async () => {
    const scripted = scriptedChannel();
    const shell = new SharedShell(scripted.open, (c) => new Error(c));
    const controller = new AbortController();
    const running = shell.run('sleep 60', { signal: controller.signal });
    scripted.err(`${tokenOf(scripted.written)}+\n`);
    controller.abort();
    expect(scripted.stopped()).toBe(true);
    expect(shell.idle).toBe(false);
    scripted.end({ exitCode: null, signal: 'TERM' });
    expect(await running).toEqual({ exitCode: null, signal: 'TERM' });
  });

  it('after an abort, a command that still ends by its own token lets the stopped shell exit (stdin closed)', async () => {
    const scripted = scriptedChannel();
    const shell = new SharedShell(scripted.open, (c) => new Error(c));
    const controller = new AbortController();
    const running = shell.run('sleep 60', { signal: controller.signal });
    const token = tokenOf(scripted.written);
    scripted.err(`${token}+\n`);
    controller.abort();
    expect(scripted.closed()).toBe(false);
    scripted.out(`${token} 143 TERM\n`);
    scripted.err(`${token}\n`);
    expect(await running).toEqual({ exitCode: null, signal: 'TERM' });
    expect(scripted.closed()).toBe(true);
  });
});

describe('shellLine and heldBack', () => {
  it('quotes the command for the shell, whatever it holds', () => {
    expect(shellLine(`echo 'a' "$b"`, 'T')).toContain(`-c 'echo '\\''a'\\'' "$b"' </dev/null`);
    expect(shellLine('cat', 'T', `it's`)).toContain(`printf '%s' 'it'\\''s' | "\${SHELL:-/bin/sh}" -c cat;`);
    expect(shellLine(`echo 'a'`, 'T', '', true)).toContain(`( eval 'echo '\\''a'\\''' ) </dev/null;`);
  });

  it('holds back exactly the longest end that could begin the token', () => {
    expect(heldBack('abc\n', 'TOKEN ')).toBe(0);
    expect(heldBack('abc\nTOK', 'TOKEN ')).toBe(3);
    expect(heldBack('abc\nTOX', 'TOKEN ')).toBe(0);
    expect(heldBack('', 'TOKEN ')).toBe(0);
  });
});
