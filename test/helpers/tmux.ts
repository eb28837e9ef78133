import { execFileSync, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEPLOY_BIN } from './cli.ts';

/** Why tmux-driven tests cannot run here, or undefined when they can. */
export const tmuxMissing: string | undefined =
  spawnSync('tmux', ['-V'], { encoding: 'utf8' }).status === 0 ? undefined : 'tmux is not installed (CI installs it: .ci/install-lab-packages)';

/** Terminals started by this test file, for unique socket and script names. */
let servers = 0;

/**
 * The built `deploy` binary in a real terminal: a tmux pane of a private tmux
 * server (its socket in `dir`, no config), read back with capture-pane, typed
 * into with send-keys. The pane runs bash, which prints `EXIT=<code>` when
 * deploy ends and stays, so the last screen can still be read.
 *
 * @example
 * const term = await TmuxTerminal.start(dir, ['run', 'deploy']);
 * await term.waitFor((screen) => screen.includes('What now?'), 'the failure menu');
 * await term.kill();
 */
export class TmuxTerminal {
  private constructor(
    private readonly socket: string,
    readonly columns: number,
  ) {}

  /** Start `deploy <args>` in `dir`, in a terminal of `columns` x `rows`, as someone at a keyboard (CI unset), with `env` exported. */
  static async start(dir: string, args: string[], size: { columns: number; rows: number } = { columns: 80, rows: 30 }, env: Record<string, string> = {}): Promise<TmuxTerminal> {
    const script = join(dir, `tty-${++servers}.sh`);
    // bash, not sh: after a child that exited on Ctrl-C with its own code, bash carries on to print EXIT=.
    await writeFile(
      script,
      `#!/bin/bash
unset CI
${Object.entries(env).map(([k, v]) => `export ${k}=${JSON.stringify(v)}`).join('\n')}
cd ${JSON.stringify(dir)}
${JSON.stringify(process.execPath)} ${JSON.stringify(DEPLOY_BIN)} ${args.map((arg) => JSON.stringify(arg)).join(' ')}
echo "EXIT=$?"
exec sleep 600
`,
    );
    // The server's socket in `dir` too: removing the temp dirs leaves nothing of it behind.
    const term = new TmuxTerminal(join(dir, `tmux-${servers}.sock`), size.columns);
    term.tmux('-f', '/dev/null', 'new-session', '-d', '-s', 'run', '-x', String(size.columns), '-y', String(size.rows), `bash ${JSON.stringify(script)}`);
    return term;
  }

  private tmux(...args: string[]): string {
    // -u: UTF-8 whatever the locale says (CI may have none); the glyphs are what the test reads.
    return execFileSync('tmux', ['-u', '-S', this.socket, ...args], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  }

  /** What the terminal shows now (with `history`, the lines scrolled off the top too), trailing blank lines dropped. */
  screen(history = false): string {
    return this.tmux('capture-pane', '-p', '-t', 'run', ...(history ? ['-S', '-'] : [])).replace(/\s+$/, '');
  }

  /** Wait until `ready(screen)` holds; fail with `what` and the last screen after `timeoutMs`. */
  async waitFor(ready: (screen: string) => boolean, what: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (ready(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs}ms for ${what}; the screen:\n${screen}`);
      await sleep(100);
    }
  }

  /** deploy's exit code, once it ended (bash prints it). */
  async exitCode(timeoutMs = 30_000): Promise<number> {
    const screen = await this.waitFor((text) => /EXIT=\d+$/m.test(text), 'deploy to exit', timeoutMs);
    return Number(/EXIT=(\d+)$/m.exec(screen)?.[1]);
  }

  /** Type keys, as tmux names them: `Down`, `Enter`, `C-c`. */
  keys(...keys: string[]): void {
    this.tmux('send-keys', '-t', 'run', ...keys);
  }

  /** Whether the terminal shows its cursor. */
  cursorVisible(): boolean {
    return this.tmux('display-message', '-p', '-t', 'run', '#{cursor_flag}').trim() === '1';
  }

  /** End the pane and its private tmux server. */
  kill(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // Already gone.
    }
  }
}
