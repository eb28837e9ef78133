// Issue 11, items 1, 5 and 6, against real OpenSSH on loopback, driving the
// built `deploy` binary as a user (or a CI runner) would: SIGTERM and SIGHUP
// mid-run, a command nobody awaited, a throw in a timer, a task that never
// settles (Ctrl-C and --deadline). Each checks on the server that nothing is
// left running, that no lock remains and that the history has its line.
//
// Root on Debian 12 (packages: .ci/install-lab-packages):
//   npx vitest run --config vitest.e2e.config.ts test/reliability/signals.e2e.test.ts
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lab from '../lab/lab.ts';
import { deployfileSource, eventually, historyOf, liveProcesses, lockDirOf, operatorHome, resetSiteState, runDeploy, startDeploy } from './harness.ts';

// A lab of its own (sshd records, host keys, vassal dir), so other e2e files running at once never stop our sshd.
process.env.DEPLOYFILE_LAB_DIR ??= '/var/tmp/deployfile-lab-signals';
process.env.DEPLOYFILE_VASSAL_DIR ??= '/etc/uwsgi/signals-lab.d';

const SITES = ['sgterm', 'sghup', 'sgtwice', 'sgesc1', 'sgesc2', 'sgtimer', 'sghang', 'sgdl1', 'sgdl2'] as const;
type Site = (typeof SITES)[number];

const TASKS = `
    pull: async (c) => { await c.run('echo pulled >> ~/runs'); },
    migrate: async (c) => { await c.run('sleep 30'); },
    stubbornMigrate: async (c) => { await c.run('trap "" TERM; sleep 31'); },
    restart: async (c) => { await c.run('echo restarted >> ~/runs'); },
    careless: async (c) => {
      // Not awaited: it fails while the next command runs.
      c.run('echo careless-started >> ~/runs; exit 3');
      await c.run('sleep 32');
      await c.run('echo should-not-run >> ~/runs');
    },
    carelessOnOne: async (c) => {
      if (c.site.name === 'sgesc1') {
        c.run('echo careless-started >> ~/runs; exit 3');
        await c.run('sleep 32');
      } else {
        await c.run('sleep 3; echo steady-done >> ~/runs');
      }
    },
    timerThrow: async (c) => {
      setTimeout(() => { throw new Error('boom in a timer'); }, 300);
      await c.run('sleep 33');
    },
    hang: async (c) => {
      await c.run('echo hang-started >> ~/runs');
      // Awaits something that never settles, and keeps a timer alive, as a forgotten poll would.
      setInterval(() => {}, 1000);
      await new Promise(() => {});
    },
`;

const skipReason = lab.labUnavailableReason();

function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

describe.skipIf(skipReason !== undefined)(`stopping a run, escaped errors and hung tasks against OpenSSH${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let sshd: lab.Sshd;
  let dir: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const users = {} as Record<Site, lab.UnixUser>;

  beforeAll(async () => {
    const key = await lab.createOperatorKey();
    for (const name of SITES) users[name] = await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
    sshd = await lab.startSshd();
    ({ home, env } = operatorHome(sshd.knownHostsLines));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-signals-'));
    const sites = Object.fromEntries(SITES.map((name) => [name, { host: lab.LOOPBACK, port: sshd.port, identityFile: key.privateKeyPath }]));
    fs.writeFileSync(path.join(dir, 'deployfile.ts'), deployfileSource(sites, TASKS));
  });

  afterAll(async () => {
    for (const site of SITES) if (users[site]) killAll(liveProcesses(users[site].uid, 'sleep'));
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = (args: string[]) => startDeploy(args, { cwd: dir, env, timeoutMs: 60_000 });
  const runs = (site: Site): string[] => {
    try {
      return fs.readFileSync(path.join(users[site].home, 'runs'), 'utf8').trim().split('\n').filter(Boolean);
    } catch {
      return [];
    }
  };
  const history = (site: Site): Record<string, unknown>[] => {
    try {
      return fs.readFileSync(historyOf(users[site]), 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    } catch {
      return [];
    }
  };
  const sleeping = (site: Site): number[] => liveProcesses(users[site].uid, 'sleep');

  describe('SIGTERM and SIGHUP are handled like the first Ctrl-C', () => {
    it.each([
      ['SIGTERM', 'sgterm', 143],
      ['SIGHUP', 'sghup', 129],
    ] as const)('%s mid-command (site %s): the command is ended on the server, the lock released, the history written, the summary printed; exit %i (128 + n)', async (signal, site, code) => {
      resetSiteState(users[site]);
      const run = start(['run', 'pull', 'migrate', 'restart', '-s', site]);
      await eventually(() => sleeping(site).length > 0, `migrate runs sleep 30 on ${site}`);
      const sent = Date.now();
      run.child.kill(signal);
      const result = await run.done;
      expect(result.code).toBe(code);
      expect(Date.now() - sent).toBeLessThan(5_000);
      expect(result.stderr).toContain(`Interrupted by ${signal}: ending running commands, then releasing the locks (send ${signal} again to exit at once)`);
      expect(result.stderr).toContain(`deploy: stopped by ${signal}; exit ${code}`);
      expect(result.stdout).toMatch(new RegExp(`${site}\\s+interrupted at migrate: sleep 30`));
      expect(result.stdout).toContain('done: pull; never started: restart');
      expect(result.stdout).toContain(`interrupted in `);
      expect(result.stdout).toContain(`(exit ${code})`);
      expect(sleeping(site)).toEqual([]);
      expect(runs(site)).toEqual(['pulled']);
      expect(fs.existsSync(lockDirOf(users[site]))).toBe(false);
      expect(history(site).at(-1)).toMatchObject({ tasks: ['pull', 'migrate', 'restart'], outcome: 'interrupted', failedTask: 'migrate' });
    });

    it('a second SIGTERM exits at once (143) and leaves the lock, which deploy unlock then removes', async () => {
      resetSiteState(users.sgtwice);
      const run = start(['run', 'stubbornMigrate', '-s', 'sgtwice']);
      await eventually(() => sleeping('sgtwice').length > 0, 'the stubborn command runs');
      run.child.kill('SIGTERM');
      await run.waitFor(/Interrupted by SIGTERM/);
      const second = Date.now();
      run.child.kill('SIGTERM');
      const result = await run.done;
      expect(result.code).toBe(143);
      expect(Date.now() - second).toBeLessThan(1_000);
      expect(fs.existsSync(lockDirOf(users.sgtwice))).toBe(true);
      const unlock = await runDeploy(['unlock', 'sgtwice'], { cwd: dir, env });
      expect(unlock.code).toBe(0);
      expect(unlock.stdout).toContain(`(process ${run.pid} no longer runs on ${os.hostname()})`);
      expect(unlock.stdout).toContain('removed the deploy lock of site sgtwice');
      // Exiting at once means the command that ignores TERM was never sent KILL: end it here.
      killAll(sleeping('sgtwice'));
    });
  });

  describe('an error nobody awaits fails only its site', () => {
    it('a c.run without await that fails: the site fails naming the task, its running command is ended, nothing more runs, the lock is released; exit 1', async () => {
      resetSiteState(users.sgesc1);
      const started = Date.now();
      const result = await runDeploy(['run', 'careless', '-s', 'sgesc1'], { cwd: dir, env, timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(result.stderr).not.toMatch(/unexpected error|at async|node:internal/);
      expect(result.stdout).toContain('a command was started without await in task careless (await every c.run, c.local and c.sudo): Command failed with exit code 3 on sgesc1');
      expect(result.stdout).toMatch(/sgesc1\s+failed at careless: a command was started without await in task careless/);
      expect(result.stdout).toContain('failed in ');
      expect(runs('sgesc1')).toEqual(['careless-started']);
      expect(sleeping('sgesc1')).toEqual([]);
      expect(fs.existsSync(lockDirOf(users.sgesc1))).toBe(false);
      expect(history('sgesc1').at(-1)).toMatchObject({ outcome: 'failed', failedTask: 'careless' });
    });

    it('another site running at the same time goes on and succeeds', async () => {
      for (const site of ['sgesc1', 'sgesc2'] as const) resetSiteState(users[site]);
      const result = await runDeploy(['run', 'carelessOnOne', '-s', 'sgesc1,sgesc2', '-p', '2'], { cwd: dir, env, timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/sgesc1\s+failed at carelessOnOne: a command was started without await in task carelessOnOne/);
      expect(result.stdout).toMatch(/sgesc2\s+ok/);
      expect(runs('sgesc2')).toEqual(['steady-done']);
      for (const site of ['sgesc1', 'sgesc2'] as const) {
        expect(sleeping(site)).toEqual([]);
        expect(fs.existsSync(lockDirOf(users[site]))).toBe(false);
      }
      expect(history('sgesc2').at(-1)).toMatchObject({ outcome: 'ok' });
    });

    it('a throw inside a timer: the site fails with "an error escaped task timerThrow", its command is ended on the server; exit 1', async () => {
      resetSiteState(users.sgtimer);
      const started = Date.now();
      const result = await runDeploy(['run', 'timerThrow', '-s', 'sgtimer'], { cwd: dir, env, timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(result.stdout).toContain('an error escaped task timerThrow (thrown in a callback, or a promise nobody awaited): boom in a timer');
      expect(result.stdout).toMatch(/sgtimer\s+failed at timerThrow: an error escaped task timerThrow/);
      expect(sleeping('sgtimer')).toEqual([]);
      expect(fs.existsSync(lockDirOf(users.sgtimer))).toBe(false);
      expect(history('sgtimer').at(-1)).toMatchObject({ outcome: 'failed', failedTask: 'timerThrow' });
    });
  });

  describe('a task that never settles', () => {
    it('the first Ctrl-C ends it: the site is interrupted naming the task that hung, the lock released, the process exits; exit 130', async () => {
      resetSiteState(users.sghang);
      const run = start(['run', 'hang', 'restart', '-s', 'sghang']);
      await eventually(() => runs('sghang').includes('hang-started'), 'hang has started');
      await eventually(() => fs.existsSync(path.join(lockDirOf(users.sghang), 'info.json')), 'the lock is held');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const sent = Date.now();
      run.child.kill('SIGINT');
      const result = await run.done;
      expect(result.code).toBe(130);
      expect(Date.now() - sent).toBeLessThan(5_000);
      expect(result.stdout).toMatch(/sghang\s+interrupted at hang: task hang did not finish \(no command running\) 1s after Ctrl-C \(SIGINT\); stopped waiting for it/);
      expect(result.stdout).toContain('never started: restart');
      expect(fs.existsSync(lockDirOf(users.sghang))).toBe(false);
      expect(history('sghang').at(-1)).toMatchObject({ outcome: 'interrupted', failedTask: 'hang' });
    });

    it('--deadline ends it: the site fails naming the task that hung; exit 1', async () => {
      resetSiteState(users.sghang);
      const started = Date.now();
      const result = await runDeploy(['run', 'hang', '-s', 'sghang', '--deadline', '3s'], { cwd: dir, env, timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(result.stdout).toContain("the run's deadline (--deadline 3s) passed: ending running commands; no new command or site starts");
      expect(result.stdout).toMatch(/sghang\s+failed at hang: task hang did not finish \(no command running\) 1s after the run's deadline \(--deadline 3s\)/);
      expect(result.stdout).toContain('(exit 1)');
      expect(fs.existsSync(lockDirOf(users.sghang))).toBe(false);
      expect(history('sghang').at(-1)).toMatchObject({ outcome: 'failed', failedTask: 'hang' });
    });

    it('--deadline (DEPLOY_DEADLINE) also ends running commands on the server, and starts no new site', async () => {
      for (const site of ['sgdl1', 'sgdl2'] as const) resetSiteState(users[site]);
      const started = Date.now();
      const result = await runDeploy(['run', 'migrate', '-s', 'sgdl1,sgdl2', '-p', '1'], { cwd: dir, env: { ...env, DEPLOY_DEADLINE: '2s' }, timeoutMs: 60_000 });
      expect(result.code).toBe(1);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(result.stdout).toMatch(/sgdl1\s+failed at migrate: sleep 30/);
      expect(result.stdout).toMatch(/sgdl2\s+not started/);
      expect(sleeping('sgdl1')).toEqual([]);
      expect(fs.existsSync(lockDirOf(users.sgdl1))).toBe(false);
      expect(history('sgdl1').at(-1)).toMatchObject({ outcome: 'failed', failedTask: 'migrate', error: expect.stringContaining("the run's deadline (--deadline 2s) passed") });
    });
  });
});
