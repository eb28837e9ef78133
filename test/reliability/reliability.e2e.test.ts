// Reliability against real OpenSSH on loopback, driving the built `deploy`
// binary as a user would: the deploy lock, Ctrl-C, timeouts that kill the
// command on the server, a connection dropped mid-command, and output far
// larger than what is kept in memory. (MaxStartups: max-startups.e2e.test.ts.)
//
// Root on Debian 12 (packages: .ci/install-lab-packages):
//   npx vitest run --config vitest.e2e.config.ts test/reliability
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lab from '../lab/lab.ts';
import { RELIABILITY_LAB_DIR, deployfileSource, eventually, historyOf, liveProcesses, lockDirOf, operatorHome, resetSiteState, runDeploy, startDeploy } from './harness.ts';

// lab.ts reads it when called, not when imported.
process.env.DEPLOYFILE_LAB_DIR = RELIABILITY_LAB_DIR;

const SITES = ['rlk', 'rint1', 'rint2', 'rto', 'rout', 'rdrop1', 'rdrop2', 'rdrop3'] as const;
type Site = (typeof SITES)[number];
/** Sites reached through the TCP relay instead of sshd's own port. */
const RELAYED: readonly Site[] = ['rdrop1'];
/** What was done on the server is checked there, so the revision must be recognisable. */
const REVISION = 'cafe0123456789abcdef0123456789abcdef0123';

const TASKS = `
    push: task({ once: true, run: async (c) => { c.shared.set('deployfile.revision', ${JSON.stringify(REVISION)}); } }),
    slow: task('Hold the site for a while', async (c) => { await c.run('echo started >> ~/runs; sleep ' + (process.env.SLOW_SECONDS ?? '3')); }),
    status: task({ lock: false, description: 'Read-only', run: async (c) => { await c.run('echo status of $USER'); } }),
    pull: async (c) => { await c.run('echo pulled'); },
    migrate: async (c) => { await c.run('sleep 30'); },
    stubbornMigrate: async (c) => { await c.run('trap "" TERM; sleep 31'); },
    restart: async (c) => { await c.run('echo restarted'); },
    sleepy: async (c) => { await c.run('sleep 300', { timeout: '2s' }); },
    stubborn: async (c) => { await c.run('trap "" TERM; sleep 301', { timeout: '2s' }); },
    defaulted: async (c) => { await c.run('sleep 302'); },
    flood: async (c) => { await c.run("yes \\"$(printf '%0999d' 0)\\" | head -c " + process.env.FLOOD_BYTES); },
    floodOneLine: async (c) => { await c.run("head -c " + process.env.FLOOD_BYTES + " /dev/zero | tr '\\\\0' x"); },
    drop: async (c) => { await c.run('echo started >> ~/runs; sleep ' + (c.site.name === 'rdrop1' ? 30 : 4)); },
`;

const skipReason = lab.labUnavailableReason();

/** Ends processes this file's own runs left on the server, by pid. */
function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/**
 * A TCP relay on loopback in front of sshd: `drop()` cuts every connection
 * through it at once (both sides reset), `freeze()` stops passing bytes
 * without closing anything, as a dead network path does.
 */
class Relay {
  private server!: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  port = 0;
  connections = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      this.connections++;
      const upstream = net.connect({ host: lab.LOOPBACK, port: this.targetPort });
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const end = (): void => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => this.server.listen(0, lab.LOOPBACK, resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  drop(): number {
    const n = this.pairs.size;
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    this.pairs.clear();
    return n;
  }

  freeze(): number {
    const n = this.pairs.size;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    return n;
  }

  async stop(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe.skipIf(skipReason !== undefined)(`reliability against OpenSSH${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let sshd: lab.Sshd;
  let relay: Relay;
  let dir: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const users = {} as Record<Site, lab.UnixUser>;

  beforeAll(async () => {
    const key = await lab.createOperatorKey();
    for (const name of SITES) users[name] = await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
    sshd = await lab.startSshd();
    relay = new Relay(sshd.port);
    await relay.start();
    // The relay is the same sshd, so the same host keys under the relay's port.
    const relayLines = sshd.knownHostsLines.map((line) => line.replace(`[${lab.LOOPBACK}]:${sshd.port} `, `[${lab.LOOPBACK}]:${relay.port} `));
    ({ home, env } = operatorHome([...sshd.knownHostsLines, ...relayLines]));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-reliability-'));
    const sites = Object.fromEntries(
      SITES.map((name) => [name, { host: lab.LOOPBACK, port: RELAYED.includes(name) ? relay.port : sshd.port, identityFile: key.privateKeyPath }]),
    );
    fs.writeFileSync(path.join(dir, 'deployfile.ts'), deployfileSource(sites, TASKS));
  });

  afterAll(async () => {
    await relay?.stop();
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const deploy = (args: string[], extraEnv: NodeJS.ProcessEnv = {}, timeoutMs?: number) => runDeploy(args, { cwd: dir, env: { ...env, ...extraEnv }, timeoutMs });
  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => startDeploy(args, { cwd: dir, env: { ...env, ...extraEnv } });
  const runsOn = (site: Site): number => {
    try {
      return fs.readFileSync(path.join(users[site].home, 'runs'), 'utf8').trim().split('\n').filter(Boolean).length;
    } catch {
      return 0;
    }
  };
  const historyLines = (site: Site): Record<string, unknown>[] => {
    try {
      return fs.readFileSync(historyOf(users[site]), 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    } catch {
      return [];
    }
  };

  describe('the deploy lock', () => {
    it('two deploys of one site at once: exactly one proceeds, the other names the holder; no lock is left', async () => {
      resetSiteState(users.rlk);
      const a = start(['run', 'slow', '-s', 'rlk']);
      const b = start(['run', 'slow', '-s', 'rlk']);
      const [ra, rb] = await Promise.all([a.done, b.done]);
      const codes = [ra.code, rb.code].sort();
      expect(codes).toEqual([0, 1]);
      const [winner, loser] = ra.code === 0 ? [a, rb] : [b, ra];
      expect(loser.stdout).toMatch(new RegExp(`site rlk is locked by \\S+@\\S+ \\(pid ${winner.pid}\\) since \\S+, running slow`));
      expect(loser.stdout).toContain('deploy unlock rlk');
      expect(runsOn('rlk')).toBe(1);
      expect(fs.existsSync(lockDirOf(users.rlk))).toBe(false);
    });

    it('while a deploy holds the lock, read-only tasks (lock: false) still run', async () => {
      resetSiteState(users.rlk);
      const holder = start(['run', 'slow', '-s', 'rlk'], { SLOW_SECONDS: '4' });
      await eventually(() => fs.existsSync(path.join(lockDirOf(users.rlk), 'info.json')), 'the first deploy holds the lock');
      const status = await deploy(['run', 'status', '-s', 'rlk']);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain('status of rlk');
      const refused = await deploy(['run', 'pull', '-s', 'rlk']);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(new RegExp(`site rlk is locked by \\S+ \\(pid ${holder.pid}\\)`));
      expect((await holder.done).code).toBe(0);
      expect(fs.existsSync(lockDirOf(users.rlk))).toBe(false);
    });

    it('every run appends to the history on the server; deploy history shows it newest first', async () => {
      resetSiteState(users.rlk);
      expect((await deploy(['run', 'pull', '-s', 'rlk'])).code).toBe(0);
      expect((await deploy(['run', 'push', 'migrate', '-s', 'rlk', '--timeout', '1s'])).code).toBe(1);
      const stored = historyLines('rlk');
      expect(stored).toHaveLength(2);
      expect(stored[0]).toMatchObject({ tasks: ['pull'], outcome: 'ok' });
      expect(stored[1]).toMatchObject({ tasks: ['push', 'migrate'], outcome: 'failed', failedTask: 'migrate', revision: REVISION });
      expect(stored[1]!.operator).toMatch(/^root@/);
      const shown = await deploy(['history', 'rlk']);
      expect(shown.code).toBe(0);
      const rows = shown.stdout.trim().split('\n');
      expect(rows[0]).toMatch(/^time\s+operator\s+revision\s+tasks\s+outcome\s+duration$/);
      expect(rows[1]).toMatch(/root@\S+\s+cafe01234567\s+push, migrate\s+failed at migrate\s/);
      expect(rows[2]).toMatch(/root@\S+\s+-\s+pull\s+ok\s/);
      const json = await deploy(['history', 'rlk', '--json', '-n', '1']);
      expect(json.stdout.trim().split('\n').map((line) => JSON.parse(line).tasks)).toEqual([['push', 'migrate']]);
    });
  });

  describe('Ctrl-C', () => {
    it('once: the running command is ended on the server, the lock released, each site accounted for; exit 130', async () => {
      for (const site of ['rint1', 'rint2'] as const) resetSiteState(users[site]);
      const run = start(['run', 'pull', 'migrate', 'restart', '-s', 'rint1,rint2', '-p', '1']);
      await eventually(() => liveProcesses(users.rint1.uid, 'sleep').length > 0, 'migrate runs sleep 30 on rint1');
      const started = Date.now();
      run.child.kill('SIGINT');
      const result = await run.done;
      expect(result.code).toBe(130);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(result.stderr).toContain('Interrupted');
      // The account: what ran, what was interrupted, what never started, per site.
      expect(result.stdout).toMatch(/rint1\s+interrupted at migrate: sleep 30/);
      expect(result.stdout).toMatch(/done: pull; never started: restart/);
      expect(result.stdout).toMatch(/rint2\s+not started/);
      expect(liveProcesses(users.rint1.uid, 'sleep')).toEqual([]);
      expect(fs.existsSync(lockDirOf(users.rint1))).toBe(false);
      expect(historyLines('rint1').at(-1)).toMatchObject({ outcome: 'interrupted', failedTask: 'migrate' });
      expect(fs.existsSync(lockDirOf(users.rint2))).toBe(false);
    });

    it('twice: exits at once; a lock left behind is shown and removed by deploy unlock', async () => {
      resetSiteState(users.rint1);
      // The command ignores TERM, so the first Ctrl-C's cleanup takes seconds (until KILL).
      const run = start(['run', 'stubbornMigrate', '-s', 'rint1']);
      await eventually(() => liveProcesses(users.rint1.uid, 'sleep').length > 0, 'the stubborn command runs');
      run.child.kill('SIGINT');
      await new Promise((resolve) => setTimeout(resolve, 200));
      const second = Date.now();
      run.child.kill('SIGINT');
      const result = await run.done;
      expect(result.code).toBe(130);
      expect(Date.now() - second).toBeLessThan(1_000);
      expect(fs.existsSync(lockDirOf(users.rint1))).toBe(true);

      const refused = await deploy(['run', 'pull', '-s', 'rint1']);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain(`(pid ${run.pid})`);
      expect(refused.stdout).toContain(`(process ${run.pid} no longer runs on ${os.hostname()})`);

      const unlock = await deploy(['unlock', 'rint1']);
      expect(unlock.code).toBe(0);
      expect(unlock.stdout).toMatch(new RegExp(`site rint1 is locked by \\S+ \\(pid ${run.pid}\\) since \\S+, running stubbornMigrate`));
      expect(unlock.stdout).toContain('removed the deploy lock of site rint1');
      expect(fs.existsSync(lockDirOf(users.rint1))).toBe(false);
      expect((await deploy(['unlock', 'rint1'])).stdout).toContain('site rint1 is not locked');
      expect((await deploy(['run', 'pull', '-s', 'rint1'])).code).toBe(0);
      // Exiting at once means the command that ignores TERM was never sent KILL: end it here.
      killAll(liveProcesses(users.rint1.uid, 'sleep'));
    });
  });

  describe('timeouts', () => {
    it.each([
      ['sleepy', [], 'sleep 300', 'TERM'],
      ['stubborn', [], 'trap "" TERM; sleep 301', 'KILL (it ignores TERM)'],
      ['defaulted', ['--timeout', '2s'], 'sleep 302', 'TERM, from --timeout'],
    ])('%s: a command past its time is killed on the server and reported as timed out', async (taskName, flags, command) => {
      resetSiteState(users.rto);
      const started = Date.now();
      const result = await deploy(['run', taskName, '-s', 'rto', ...flags]);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`Command timed out on rto (rto@127.0.0.1:${sshd.port}): ${command}`);
      expect(result.stdout).toMatch(/✖ timed out after/);
      expect(Date.now() - started).toBeLessThan(15_000);
      // Gone on the server, not merely no longer waited for.
      await eventually(() => liveProcesses(users.rto.uid, 'sleep').length === 0, `no sleep left running as rto after ${taskName}`, 3_000);
      expect(fs.existsSync(lockDirOf(users.rto))).toBe(false);
    });
  });

  describe('a connection dropped mid-command', () => {
    it('fails that site as "connection lost during <command>", the others carry on, nothing re-runs, no lock is left', async () => {
      for (const site of ['rdrop1', 'rdrop2', 'rdrop3'] as const) resetSiteState(users[site]);
      const run = start(['run', 'drop', '-s', 'rdrop1,rdrop2,rdrop3', '-p', '3']);
      await eventually(() => liveProcesses(users.rdrop1.uid, 'sleep').length > 0, 'rdrop1 runs its long command');
      expect(relay.drop()).toBeGreaterThan(0);
      const result = await run.done;
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(new RegExp(`connection to rdrop1@127\\.0\\.0\\.1:${relay.port} lost during: echo started >> ~/runs; sleep 30`));
      expect(result.stdout).toMatch(/rdrop1\s+failed at drop: echo started >> ~\/runs; sleep 30/);
      expect(result.stdout).toMatch(/rdrop2\s+ok/);
      expect(result.stdout).toMatch(/rdrop3\s+ok/);
      expect(runsOn('rdrop1')).toBe(1);
      // Released over a new connection (through the relay, which lets new ones through).
      expect(fs.existsSync(lockDirOf(users.rdrop1))).toBe(false);
      expect(historyLines('rdrop1').at(-1)).toMatchObject({ outcome: 'failed', failedTask: 'drop' });
      for (const site of ['rdrop2', 'rdrop3'] as const) expect(fs.existsSync(lockDirOf(users[site]))).toBe(false);
      // sshd leaves a non-pty command running when its connection dies (as the message says): end it here.
      killAll(liveProcesses(users.rdrop1.uid, 'sleep'));
    });

    it('a path that goes silent is noticed by keepalives (ServerAliveInterval from ~/.ssh/config)', async () => {
      resetSiteState(users.rdrop1);
      killAll(liveProcesses(users.rdrop1.uid, 'sleep'));
      const relayLines = sshd.knownHostsLines.map((line) => line.replace(`[${lab.LOOPBACK}]:${sshd.port} `, `[${lab.LOOPBACK}]:${relay.port} `));
      const quick = operatorHome([...sshd.knownHostsLines, ...relayLines], `Host ${lab.LOOPBACK}\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n`);
      try {
        const run = startDeploy(['run', 'drop', '-s', 'rdrop1'], { cwd: dir, env: quick.env });
        await eventually(() => liveProcesses(users.rdrop1.uid, 'sleep').length > 0, 'rdrop1 runs its long command');
        const frozen = Date.now();
        expect(relay.freeze()).toBeGreaterThan(0);
        const result = await run.done;
        expect(result.code).toBe(1);
        expect(Date.now() - frozen).toBeLessThan(10_000);
        expect(result.stdout).toMatch(/connection to rdrop1@\S+ lost during: echo started >> ~\/runs; sleep 30/);
        expect(fs.existsSync(lockDirOf(users.rdrop1))).toBe(false);
      } finally {
        relay.drop();
        killAll(liveProcesses(users.rdrop1.uid, 'sleep'));
        fs.rmSync(quick.home, { recursive: true, force: true });
      }
    });
  });

  describe('output far beyond what is kept', () => {
    // DEFAULT_OUTPUT_LIMIT keeps 1 MiB per stream for results and errors; the rest only streams through.
    /**
     * Peak RSS of the whole deploy process (ssh2, zod, listr2, jiti and the
     * deployfile: about 75 MB for a run that prints nothing). Measured on
     * Node 20: about 200 MB whether 200 MB or 1 GB goes through, the rest
     * being garbage V8 collects lazily; holding the output would need several
     * times the output size (JS strings are UTF-16).
     */
    const RSS_LIMIT_MB = 256;

    it.each([
      ['flood', 1000],
      ['floodOneLine', 400],
    ])('%s: %i MB through one command, printed line by line to a pipe; peak RSS stays under 256 MB', async (taskName, megabytes) => {
      resetSiteState(users.rout);
      const bytes = megabytes * 1000 * 1000;
      const run = startDeploy(['run', taskName, '-s', 'rout'], { cwd: dir, env: { ...env, FLOOD_BYTES: String(bytes) }, timeoutMs: 170_000 });
      const result = await run.done;
      const printed = run.stdoutBytes();
      console.log(`${taskName}: ${(printed / 1e6).toFixed(0)} MB printed, peak RSS ${(result.peakRssKb / 1024).toFixed(0)} MB`);
      expect(result.code).toBe(0);
      expect(printed).toBeGreaterThan(bytes);
      expect(result.peakRssKb / 1024).toBeLessThan(RSS_LIMIT_MB);
    }, 180_000);
  });
});
