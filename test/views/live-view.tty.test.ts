// The live view (listr2) in a real terminal: tmux runs the built `deploy`
// binary in an 80x30 pane, the test reads the screen as a person would and
// types keys. Sites only run local commands, so no SSH is needed.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';
import { TmuxTerminal, tmuxMissing } from '../helpers/tmux.ts';

afterAll(removeTempDirs);

/** A run that waits on a wrong screen fails after its waits (30s each), not vitest's default. */
const SLOW = { timeout: 90_000 };

let dir: string;
let term: TmuxTerminal | undefined;

afterEach(() => {
  term?.kill();
  term = undefined;
});

beforeAll(async () => {
  dir = await tempDir('deployfile-tty-');
  // lock: false: these tasks never touch the servers, so they need no deploy lock.
  await writeFile(
    join(dir, 'deployfile.ts'),
    `import { defineDeployfile, task } from 'deployfile';
const at = { host: '127.0.0.1', port: 1 };
export default defineDeployfile({
  sites: { alpha: at, bravo: at, charlie: at },
  tasks: {
    deploy: task('Deploy', async (c) => {
      if (c.site.name === 'alpha') {
        if (!(await c.confirm('Deploy alpha now?'))) c.abort('said no');
        await c.local('echo alpha deployed');
      }
      // Fails once alpha's question is up, so its menu waits in the queue behind it.
      if (c.site.name === 'bravo') await c.local('sleep 0.5; echo bravo broke >&2; exit 3');
      if (c.site.name === 'charlie') await c.local('echo charlie runs a command line much longer than the eighty columns of this terminal; sleep 2');
    }, { lock: false }),
    migrate: task('Migrate', async (c) => { c.skip('no migrations'); }, { lock: false }),
    restart: task('Restart', async (c) => { await c.local('true'); }, { lock: false }),
    build: task({ description: 'Build once', once: true, lock: false, run: async (c) => { await c.local('echo building; exit 4'); } }),
    ship: task('Ship', async (c) => { await c.invoke('build'); await c.local('echo shipped'); }, { lock: false }),
    slow: task('Takes a while', async (c) => { await c.local('echo slow; sleep 5'); }, { lock: false }),
    stubborn: task('Ignores Ctrl-C', async (c) => { await c.local('trap "" INT TERM; echo stubborn; sleep 8'); }, { lock: false }),
  },
});
`,
  );
});

/** Lines of `screen` that match `pattern`. */
function matching(screen: string, pattern: RegExp): string[] {
  return screen.split('\n').filter((line) => pattern.test(line));
}

/** The failure menu as inquirer draws it, one line per choice. */
const MENU = /What now\?/;
const DURATION = String.raw`\d+(\.\d+)?(ms|s)`;

describe.skipIf(tmuxMissing)(`the live view in a real terminal${tmuxMissing ? ` (skipped: ${tmuxMissing})` : ''}`, () => {
  it('a question stays on screen until answered, after another site finishes; arrow keys leave one menu; the end shows every step and a summary that matches the exit code', SLOW, async () => {
    term = await TmuxTerminal.start(dir, ['run', 'deploy', 'migrate', 'restart']);

    // Charlie's long command is cut at the terminal's edge, not wrapped into the rows under it.
    const first = await term.waitFor((screen) => screen.includes('[alpha] Deploy alpha now?'), "alpha's question");
    const command = await term.waitFor((screen) => /› \$ echo charlie runs/.test(screen), "charlie's command");
    expect(matching(command, /› \$ echo charlie runs/)[0]).toMatch(/…$/);
    expect(first).not.toContain('this machine');
    expect(first).toMatch(/deploy \? waiting for your answer below/);

    term.keys('Down');
    await term.waitFor((screen) => /❯ Yes/.test(screen), 'Yes selected');
    term.keys('Enter');
    // Bravo's failure menu follows; then alpha finishes while it waits.
    await term.waitFor((screen) => screen.includes('[bravo] Command failed') && screen.includes('❯ Retry the command'), "bravo's failure menu");
    await term.waitFor((screen) => /^✔ alpha /m.test(screen), 'alpha finished');
    // The menu stays for as long as it waits (it used to vanish here until a key was pressed).
    for (let i = 0; i < 5; i++) {
      const screen = term.screen();
      expect(screen, screen).toContain('[bravo] Command failed');
      expect(screen, screen).toContain('❯ Retry the command');
      await sleep(200);
    }

    // Each arrow key redraws the one menu in place: no copies, on screen or scrolled off.
    term.keys('Down', 'Down', 'Down');
    await term.waitFor((screen) => screen.includes('❯ Abort this site'), 'the cursor on "Abort this site"');
    term.keys('Up', 'Up');
    const moved = await term.waitFor((screen) => screen.includes('❯ Skip it and continue'), 'the cursor on "Skip it and continue"');
    expect(matching(term.screen(true), MENU), moved).toHaveLength(1);
    term.keys('Enter');

    const code = await term.exitCode();
    const end = term.screen();
    expect(code, end).toBe(0);
    // Every site keeps its steps with their durations, and the skip with its reason.
    for (const site of ['alpha', 'bravo', 'charlie']) expect(end, end).toMatch(new RegExp(`^✔ ${site} ${site}@127\\.0\\.0\\.1:1 .*${DURATION}$`, 'm'));
    expect(matching(end, new RegExp(`^  ✔ deploy ${DURATION}$`)), end).toHaveLength(3);
    expect(matching(end, /^  ↓ migrate skipped: no migrations$/), end).toHaveLength(3);
    expect(matching(end, new RegExp(`^  ✔ restart ${DURATION}$`)), end).toHaveLength(3);
    expect(end).toMatch(/^✔ bravo .*1 failure skipped/m);
    expect(end).not.toContain('this machine');
    expect(end).not.toMatch(MENU);
    // The summary agrees with the tree and the exit code.
    expect(end).toContain('Summary: 3 ok (3 sites)');
    expect(end).toMatch(/^ {2}bravo {4}ok, 1 failure skipped/m);
    expect(end).toMatch(/^done in .* \(exit 0\)$/m);
  });

  it('a failed run-once task fails its row and every site waiting on it, and the summary says so', SLOW, async () => {
    term = await TmuxTerminal.start(dir, ['run', 'ship', '-s', 'alpha,bravo', '--on-failure', 'abort']);
    const code = await term.exitCode();
    const end = term.screen();
    expect(code, end).toBe(1);
    expect(end).toMatch(/^✖ this machine$/m);
    expect(end).toMatch(new RegExp(`^  › ✖ build ${DURATION}\n {6}Command failed with exit code 4 locally: echo building; exit 4$`, 'm'));
    for (const site of ['alpha', 'bravo']) expect(end, end).toMatch(new RegExp(`^✖ ${site} ${site}@127\\.0\\.0\\.1:1 failed ${DURATION}$`, 'm'));
    expect(matching(end, new RegExp(`^  ✖ ship ${DURATION}$`)), end).toHaveLength(2);
    expect(end).not.toMatch(/✔/);
    expect(end).toContain('Summary: 0 ok, 2 failed (2 sites)');
    expect(matching(end, /^ {2}(alpha|bravo) {2}failed at build/), end).toHaveLength(2);
    expect(end).toMatch(/^failed in .* \(exit 1\)$/m);
  });

  it('after a Ctrl-C the tree, the summary and the exit code all say interrupted', SLOW, async () => {
    term = await TmuxTerminal.start(dir, ['run', 'slow', '-s', 'alpha,bravo']);
    await term.waitFor((screen) => matching(screen, /^ {6}slow$/).length === 2, 'both sites running');
    term.keys('C-c');
    const code = await term.exitCode();
    const end = term.screen();
    expect(code, end).toBe(130);
    for (const site of ['alpha', 'bravo']) expect(end, end).toMatch(new RegExp(`^✖ ${site} ${site}@127\\.0\\.0\\.1:1 interrupted ${DURATION}$`, 'm'));
    expect(matching(end, /^ {4}› interrupted during: echo slow; sleep 5$/), end).toHaveLength(2);
    expect(end).not.toMatch(/failed/);
    expect(end).toContain('Summary: 0 ok, 2 interrupted (2 sites)');
    expect(end).toMatch(/^interrupted in .* \(exit 130\)$/m);
    expect(term.cursorVisible()).toBe(true);
  });

  it('the cursor is visible again after a double Ctrl-C', SLOW, async () => {
    term = await TmuxTerminal.start(dir, ['run', 'stubborn', '-s', 'alpha']);
    await term.waitFor((screen) => screen.includes('stubborn'), 'the stubborn command running');
    // listr2 hides the cursor while it draws.
    expect(term.cursorVisible()).toBe(false);
    term.keys('C-c');
    // Two separate presses, as a person makes them: the first starts the graceful stop, which waits on the command.
    await sleep(500);
    term.keys('C-c');
    const code = await term.exitCode();
    expect(code, term.screen()).toBe(130);
    expect(term.cursorVisible()).toBe(true);
  });
});
