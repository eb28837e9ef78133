// Issue 11, items 3 and 4 and the SSH parts of 8, against real OpenSSH on
// loopback, driving the built `deploy` binary: a root login (sshd refuses
// `signal` requests there), a session process stopped with SIGSTOP, Ctrl-C
// during a handshake that never completes, a refused port, a NUL byte,
// `~/` in put/get, a newline in a put path, `c.cd('-P')`.
//
// Root on Debian 12, in a lab of its own:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-ssh DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/ssh-lab.d \
//     npx vitest run --config vitest.e2e.config.ts test/reliability/ssh-hardening.e2e.test.ts
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lab from '../lab/lab.ts';
import { deployfileSource, eventually, historyOf, liveProcesses, lockDirOf, operatorHome, resetSiteState, runDeploy, startDeploy } from './harness.ts';

// lab.ts reads it when called, not when imported. Our own lab: `lab down` elsewhere must not stop our sshd.
process.env.DEPLOYFILE_LAB_DIR ||= '/var/tmp/deployfile-lab-ssh';

const STALL = 'shstall';
const STALL_INT = 'shstint';
const PLAIN = 'shplain';
const USERS = [STALL, STALL_INT, PLAIN] as const;
/** Odd durations, so the test finds its own commands among whatever else runs on this machine. */
const ROOT_SLEEP = '611';
const STALL_SLEEP = '612';
const PLAIN_SLEEP = '613';

const TASKS = `
    sleepLong: async (c) => { await c.run('sleep ' + process.env.SLEEP_SECONDS); },
    nul: async (c) => { await c.run('echo "a\\u0000b"'); },
    transfer: async (c) => {
      await c.put(process.env.LOCAL_FILE, '~/uploaded.txt');
      await c.get('~/uploaded.txt', process.env.LOCAL_COPY);
      await c.run('cat uploaded.txt');
    },
    forge: async (c) => { await c.put(process.env.LOCAL_FILE, '~/x\\n[other] deployed revision 666'); },
    optionDir: async (c) => {
      await c.run('mkdir -p ./-P');
      await c.cd('-P').run('echo "in $(pwd)"');
    },
    hello: async (c) => { await c.run('echo hello'); },
    stopHere: async (c) => { await c.local('true'); c.abort('stopped before any remote command'); },
`;

const skipReason = lab.labUnavailableReason();

/** Live processes of `uid` whose command line is exactly `argv`. */
function processesRunning(uid: number, argv: string[]): number[] {
  const want = argv.join('\0');
  return liveProcesses(uid, argv[0]!).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '') === want;
    } catch {
      return false;
    }
  });
}

function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function signalAll(pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** The user's `sshd: user@notty` process that runs `pid`'s shell: the session process. */
function sessionProcessOf(uid: number, pid: number): number {
  for (let p = pid; p > 1; p = parentOf(p)) {
    const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
    if (/^Name:\s+sshd$/m.test(status) && Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) === uid) return p;
  }
  throw new Error(`no sshd session process above ${pid}`);
}

describe.skipIf(skipReason !== undefined)(`SSH hardening against OpenSSH${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let sshd: lab.Sshd;
  let dir: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  let rootKeys: string;
  let rootStateExisted = true;
  let silent: net.Server;
  let silentPort = 0;
  let closedPort = 0;
  const silentSockets = new Set<net.Socket>();
  const users = {} as Record<(typeof USERS)[number], lab.UnixUser>;
  const leftovers: number[] = [];

  beforeAll(async () => {
    const key = await lab.createOperatorKey();
    for (const name of USERS) users[name] = await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
    // Root logs in with the lab's key from a file of the lab's, not /root/.ssh (which this test leaves alone).
    rootKeys = path.join(lab.labDir(), 'root_authorized_keys');
    fs.writeFileSync(rootKeys, `${key.publicKey}\n`, { mode: 0o600 });
    rootStateExisted = fs.existsSync('/root/.deployfile');
    sshd = await lab.startSshd({
      extraConfig: [
        'PermitRootLogin prohibit-password',
        // The lab dir is under /var/tmp (world-writable): StrictModes would refuse the key file there.
        'StrictModes no',
        // Debug level shows which way a command was ended: killpg for a signal request, or its refusal.
        'LogLevel DEBUG1',
        'Match User root',
        `  AuthorizedKeysFile ${rootKeys}`,
      ].join('\n'),
    });
    ({ home, env } = operatorHome(sshd.knownHostsLines));
    // A server that accepts TCP and then says nothing (no SSH banner): a handshake that never completes.
    silent = net.createServer((socket) => {
      silentSockets.add(socket);
      socket.on('close', () => silentSockets.delete(socket));
      socket.on('error', () => undefined);
      // Read (and ignore) what the client sends, so its closing the connection is seen.
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, lab.LOOPBACK, resolve));
    silentPort = (silent.address() as net.AddressInfo).port;
    // A port nobody listens on: a typo'd port.
    closedPort = await lab.freePort();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-ssh-hardening-'));
    const site = (port: number) => ({ host: lab.LOOPBACK, port, identityFile: key.privateKeyPath });
    const sites: Record<string, { host: string; port: number; identityFile: string; user?: string }> = {
      root: { ...site(sshd.port), user: 'root' },
      silent: { ...site(silentPort), user: PLAIN },
      typo: { ...site(closedPort), user: PLAIN },
    };
    for (const name of USERS) sites[name] = site(sshd.port);
    fs.writeFileSync(path.join(dir, 'deployfile.ts'), deployfileSource(sites, TASKS));
  });

  afterAll(async () => {
    signalAll(leftovers, 'SIGKILL');
    for (const socket of silentSockets) socket.destroy();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
    await sshd?.stop();
    if (rootKeys) fs.rmSync(rootKeys, { force: true });
    // Root's lock and history from these runs live in /root/.deployfile: remove them if this test made it.
    if (!rootStateExisted) fs.rmSync('/root/.deployfile', { recursive: true, force: true });
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => startDeploy(args, { cwd: dir, env: { ...env, ...extraEnv } });
  const deploy = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => runDeploy(args, { cwd: dir, env: { ...env, ...extraEnv } });
  const sshdLogSince = (offset: number): string => fs.readFileSync(sshd.logPath, 'utf8').slice(offset);

  describe('servers that refuse signal requests', () => {
    it('a root login: sshd refuses the signal, the timed-out command is ended through a second channel', async () => {
      // What a second root session costs before its command runs: bash sources ~/.bashrc for SSH commands.
      const rcStarted = Date.now();
      spawnSync('/bin/bash', ['-c', 'true'], { env: { HOME: '/root', SSH_CLIENT: '127.0.0.1 1 22', PATH: '/usr/bin:/bin' }, cwd: '/root' });
      const rcMs = Date.now() - rcStarted;
      const logFrom = fs.statSync(sshd.logPath).size;
      const run = start(['run', 'sleepLong', '-s', 'root', '--timeout', '5s'], { SLEEP_SECONDS: ROOT_SLEEP });
      await run.waitFor(/\$ sleep 611/);
      const commandStarted = Date.now();
      await eventually(() => processesRunning(0, ['sleep', ROOT_SLEEP]).length > 0, 'root runs the sleep');
      let endedAt = 0;
      // Polled while the run goes on: when the command ends on the server, not when the run returns.
      const watch = eventually(() => processesRunning(0, ['sleep', ROOT_SLEEP]).length === 0 && (endedAt = Date.now()) > 0, 'the sleep ends', 20_000);
      const result = await run.done;
      await watch;
      const returnedAt = Date.now();
      console.log(`root login (rc files take ${rcMs} ms), --timeout 5s: the sleep ended ${endedAt - commandStarted} ms and the run returned ${returnedAt - commandStarted} ms after the command started`);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`Command timed out on root (root@127.0.0.1:${sshd.port}): sleep ${ROOT_SLEEP}`);
      expect(result.stdout).not.toContain('did not answer');
      // TERM from the second channel once its login shell is up (plus KILL_AFTER at most), not sleep's 611 s.
      // Bounds with room for a loaded machine: what they rule out is the command running to its end (minutes).
      expect(endedAt - commandStarted).toBeLessThan(5_000 + rcMs + 2_000 + 6_000);
      expect(returnedAt - endedAt).toBeLessThan(rcMs * 2 + 7_000); // then the history and the lock, over the same connection
      const log = sshdLogSince(logFrom);
      // The signal request was refused (the reason this path exists)...
      expect(log).toContain('session signalling requires privilege separation');
      // ...so a second session was opened on the same connection to kill the group.
      expect(log).toMatch(/Starting session: command for root from 127\.0\.0\.1 port (\d+) id 1/);
      expect(fs.existsSync('/root/.deployfile/lock')).toBe(false);
    });

    it('a server that honours signals still gets the signal request, and no second channel', async () => {
      resetSiteState(users[PLAIN]);
      const logFrom = fs.statSync(sshd.logPath).size;
      const result = await deploy(['run', 'sleepLong', '-s', PLAIN, '--timeout', '2s'], { SLEEP_SECONDS: PLAIN_SLEEP });
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`Command timed out on ${PLAIN}`);
      expect(processesRunning(users[PLAIN].uid, ['sleep', PLAIN_SLEEP])).toEqual([]);
      const log = sshdLogSince(logFrom);
      expect(log).toMatch(/session_signal_req: signal TERM, killpg\(\d+, 15\)/);
      expect(log).not.toMatch(/kill -TERM -\d+/);
      expect(fs.existsSync(lockDirOf(users[PLAIN]))).toBe(false);
    });
  });

  describe('a stalled connection (the session process stopped with SIGSTOP)', () => {
    const stallCase = async (user: lab.UnixUser, how: 'timeout' | 'SIGINT') => {
      resetSiteState(user);
      const args = ['run', 'sleepLong', '-s', user.name, ...(how === 'timeout' ? ['--timeout', '5s'] : [])];
      const started = Date.now();
      const run = start(args, { SLEEP_SECONDS: STALL_SLEEP });
      let sleepPid = 0;
      await eventually(() => {
        sleepPid = processesRunning(user.uid, ['sleep', STALL_SLEEP])[0] ?? 0;
        return sleepPid > 0;
      }, `${user.name} runs the sleep`);
      const session = sessionProcessOf(user.uid, sleepPid);
      leftovers.push(session, sleepPid);
      process.kill(session, 'SIGSTOP');
      let stopAt = Date.now();
      try {
        if (how === 'SIGINT') {
          await new Promise((resolve) => setTimeout(resolve, 500));
          stopAt = Date.now();
          run.child.kill('SIGINT');
        }
        const result = await run.done;
        const returned = Date.now();
        // Before SIGCONT: once resumed, sshd reads what was queued for it (the TERM) and may still deliver it.
        const stillRunning = processesRunning(user.uid, ['sleep', STALL_SLEEP]);
        return { result, fromStart: returned - started, fromStop: returned - stopAt, sleepPid, stillRunning };
      } finally {
        // Let the stopped sshd see its connection gone, then end what it left.
        process.kill(session, 'SIGCONT');
      }
    };

    it('--timeout 5s returns within the grace period, says the server stopped answering, and releases the lock over a new connection', async () => {
      const { result, fromStart, sleepPid, stillRunning } = await stallCase(users[STALL], 'timeout');
      console.log(`stalled session, --timeout 5s: the run returned ${fromStart} ms after it started`);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`Command timed out on ${STALL} (${STALL}@127.0.0.1:${sshd.port}): sleep ${STALL_SLEEP}`);
      expect(result.stdout).toContain(`warning: ${STALL}@127.0.0.1:${sshd.port} did not answer 3 s after the command was told to stop (TERM, then KILL); the connection was closed, and the command may still be running on the server`);
      // 5 s of timeout, 3 s of grace, a new connection for the lock, and room for a loaded machine:
      // what this rules out is waiting out sshd's 60 s of keepalives.
      expect(fromStart).toBeLessThan(5_000 + 3_000 + 3_000 + 15_000);
      expect(result.stdout).not.toContain('could not release the deploy lock');
      expect(fs.existsSync(lockDirOf(users[STALL]))).toBe(false);
      expect(fs.readFileSync(historyOf(users[STALL]), 'utf8')).toContain('"outcome":"failed"');
      // What the message says: the stopped session never passed TERM on, so the command is still there.
      expect(stillRunning).toEqual([sleepPid]);
      signalAll([sleepPid], 'SIGKILL');
    });

    it('Ctrl-C returns within the grace period with exit 130 and no lock left', async () => {
      const { result, fromStop, sleepPid } = await stallCase(users[STALL_INT], 'SIGINT');
      console.log(`stalled session, Ctrl-C: the run returned ${fromStop} ms after SIGINT`);
      expect(result.code).toBe(130);
      expect(result.stdout).toMatch(new RegExp(`${STALL_INT}\\s+interrupted at sleepLong: sleep ${STALL_SLEEP}`));
      expect(result.stdout).toContain(`warning: ${STALL_INT}@127.0.0.1:${sshd.port} did not answer 3 s after the command was told to stop`);
      expect(fromStop).toBeLessThan(3_000 + 3_000 + 12_000); // not the 60 s of keepalives
      expect(result.stdout).not.toContain('could not release the deploy lock');
      expect(fs.existsSync(lockDirOf(users[STALL_INT]))).toBe(false);
      signalAll([sleepPid], 'SIGKILL');
    });
  });

  describe('connecting', () => {
    it('Ctrl-C during a handshake that never completes returns at once, not at ConnectTimeout', async () => {
      const run = start(['run', 'hello', '-s', 'silent']);
      await eventually(() => silentSockets.size > 0, 'deploy is connecting');
      await new Promise((resolve) => setTimeout(resolve, 300));
      const interrupted = Date.now();
      run.child.kill('SIGINT');
      const result = await run.done;
      const elapsed = Date.now() - interrupted;
      console.log(`Ctrl-C while connecting: the run returned ${elapsed} ms after SIGINT`);
      expect(result.code).toBe(130);
      expect(elapsed).toBeLessThan(6_000); // ConnectTimeout is 20 s
      expect(result.stdout).toMatch(/silent\s+interrupted/);
      expect(result.stdout).toContain(`interrupted while connecting to ${PLAIN}@127.0.0.1:${silentPort}`);
    });

    it('a site whose tasks stop before any remote command is not waited for: its early handshake is ended', async () => {
      const started = Date.now();
      const result = await deploy(['run', 'stopHere', '-s', 'silent']);
      const elapsed = Date.now() - started;
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('stopped before any remote command');
      expect(result.stdout).not.toContain('could not connect');
      expect(elapsed).toBeLessThan(10_000); // ConnectTimeout is 20 s
      // The handshake the run started early was closed with it, not left to time out.
      await eventually(() => silentSockets.size === 0, 'the early connection to the silent server is closed');
    });

    it('a refused port (nothing listening) fails at once, says so, and is not retried', async () => {
      const started = Date.now();
      const result = await deploy(['run', 'hello', '-s', 'typo']);
      const elapsed = Date.now() - started;
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`could not connect to 127.0.0.1:${closedPort}: connection refused (nothing is listening on that port: check the port and that sshd runs); not retried`);
      expect(result.stdout).not.toContain('retrying in');
      expect(elapsed).toBeLessThan(5_000);
    });
  });

  describe('what is sent', () => {
    it('a NUL byte in a command is refused before anything is sent, not reported as a lost connection', async () => {
      resetSiteState(users[PLAIN]);
      const result = await deploy(['run', 'nul', '-s', PLAIN]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('refusing to run a command that contains a NUL byte');
      expect(result.stdout).not.toMatch(/lost during|connection to .* lost/);
      expect(fs.existsSync(lockDirOf(users[PLAIN]))).toBe(false);
    });

    it('put and get expand ~/ like run and cd', async () => {
      resetSiteState(users[PLAIN]);
      const local = path.join(dir, 'local.txt');
      const copy = path.join(dir, 'copy', 'back.txt');
      fs.writeFileSync(local, 'uploaded by the e2e test\n');
      const result = await deploy(['run', 'transfer', '-s', PLAIN], { LOCAL_FILE: local, LOCAL_COPY: copy });
      expect(result.code).toBe(0);
      expect(fs.readFileSync(path.join(users[PLAIN].home, 'uploaded.txt'), 'utf8')).toBe('uploaded by the e2e test\n');
      expect(fs.existsSync(path.join(users[PLAIN].home, '~'))).toBe(false);
      expect(fs.readFileSync(copy, 'utf8')).toBe('uploaded by the e2e test\n');
      expect(result.stdout).toContain(`[${PLAIN}]   uploaded by the e2e test`);
      fs.rmSync(path.join(users[PLAIN].home, 'uploaded.txt'), { force: true });
    });

    it('a newline in a put path is shown escaped: it cannot forge a [site] line', async () => {
      resetSiteState(users[PLAIN]);
      const local = path.join(dir, 'local.txt');
      fs.writeFileSync(local, 'x\n');
      const result = await deploy(['run', 'forge', '-s', PLAIN], { LOCAL_FILE: local });
      expect(result.code).toBe(0);
      expect(result.stdout).not.toMatch(/^\[other\]/m);
      expect(result.stdout).toContain(`:"~/x\\n[other] deployed revision 666"`);
      expect(fs.existsSync(path.join(users[PLAIN].home, 'x\n[other] deployed revision 666'))).toBe(true);
      fs.rmSync(path.join(users[PLAIN].home, 'x\n[other] deployed revision 666'), { force: true });
    });

    it("c.cd('-P') runs in the directory named -P, not in $HOME", async () => {
      resetSiteState(users[PLAIN]);
      const result = await deploy(['run', 'optionDir', '-s', PLAIN]);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`in ${users[PLAIN].home}/-P`);
      fs.rmSync(path.join(users[PLAIN].home, '-P'), { recursive: true, force: true });
    });
  });
});
