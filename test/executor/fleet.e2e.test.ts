// Many site users on one stock OpenSSH sshd, deployed at once through the
// built `deploy` binary, as a CI job would run it (no TTY, --json, its own
// HOME whose ~/.ssh/known_hosts trusts only the lab's sshd).
//
// sshd runs with its defaults for MaxStartups (10:30:100: beyond 10
// unauthenticated connections it drops new ones at random) and MaxSessions
// (10), which is what makes "50 sites at once" hard.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages):
//   npx vitest run --config vitest.e2e.config.ts test/executor
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeployEvent } from '../../src/core/event-schema.ts';
import { deploy, type CliRun } from '../helpers/cli.ts';
import * as lab from '../lab/lab.ts';

/** Site users of this test only (no other test uses these names). */
const USERS = Array.from({ length: 50 }, (_, i) => `fleet${String(i + 1).padStart(2, '0')}`);
const TWENTY = USERS.slice(0, 20);
const FAILING = 'fleet13';

const skipReason = lab.labUnavailableReason();

describe.skipIf(skipReason !== undefined)(`many sites at once on one stock sshd${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let sshd: lab.Sshd | undefined;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let operatorKey: string;
  const timings: string[] = [];

  beforeAll(async () => {
    const key = await lab.createOperatorKey();
    for (const user of USERS) await lab.createSiteUser(user, { authorizedKeys: [key.publicKey] });
    // No MaxStartups or MaxSessions here: OpenSSH's defaults are the point.
    sshd = await lab.startSshd();
    const config = fs.readFileSync(sshd.configPath, 'utf8');
    expect(config).not.toMatch(/MaxStartups|MaxSessions/i);

    work = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-fleet-'));
    const home = path.join(work, 'home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(home, '.ssh', 'known_hosts'), sshd.knownHostsLines.join('\n') + '\n', { mode: 0o600 });
    env = { HOME: home, SSH_AUTH_SOCK: '', DEPLOY_SSH_KEY: '', CI: 'true' };

    const sites = Object.fromEntries(USERS.map((user) => [user, { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath, vars: { fail: user === FAILING } }]));
    operatorKey = fs.readFileSync(key.privateKeyPath, 'utf8');
    // As in CI: no identityFile anywhere, the key comes from DEPLOY_SSH_KEY.
    const ciSites = Object.fromEntries(TWENTY.map((user) => [user, { host: lab.LOOPBACK, port: sshd!.port }]));
    fs.writeFileSync(
      path.join(work, 'ci.deployfile.ts'),
      `import { defineDeployfile } from 'deployfile';
export default defineDeployfile({
  sites: ${JSON.stringify(ciSites)},
  tasks: { deploy: async (c) => { await c.run(\`echo "\${process.env.FLEET_RUN}" > ~/deployed && echo ok >> ~/deployed\`); } },
});
`,
    );
    fs.writeFileSync(
      path.join(work, 'deployfile.ts'),
      `import { defineDeployfile, task } from 'deployfile';
export default defineDeployfile({
  sites: ${JSON.stringify(sites, null, 2)},
  groups: { twenty: ${JSON.stringify(TWENTY)} },
  tasks: {
    build: task({ description: 'Build once for every site', once: true, run: async (c) => { await c.local(\`echo built >> \${process.env.FLEET_COUNTER}\`); } }),
    deploy: task('Record the run on the site', async (c) => {
      await c.invoke('build');
      // Hold the connection a while, so all the sites really are connected at once.
      await c.run(\`echo "\${process.env.FLEET_RUN}" > ~/deployed && whoami && sleep 1\`);
      if (c.site.vars.fail) await c.run('echo "migration failed" >&2; exit 7');
      await c.run('echo ok >> ~/deployed');
    }),
  },
});
`,
    );
  });

  afterAll(async () => {
    // Only what this test started: other e2e tests may have their own lab daemons up.
    await sshd?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (timings.length > 0) console.log(`fleet timings:\n  ${timings.join('\n  ')}`);
  });

  async function fleetRun(label: string, args: string[]): Promise<{ result: CliRun; events: DeployEvent[]; counter: string; runTag: string }> {
    const runTag = `${label}-${Date.now()}`;
    const counter = path.join(work, `${label}.counter`);
    const started = performance.now();
    const result = await deploy(['run', 'deploy', '--json', ...args], { cwd: work, env: { ...env, FLEET_RUN: runTag, FLEET_COUNTER: counter }, timeoutMs: 150_000 });
    timings.push(`${label}: ${((performance.now() - started) / 1000).toFixed(1)} s wall, exit ${result.code}`);
    const lines = result.stdout.split('\n').filter(Boolean);
    let events: DeployEvent[];
    try {
      events = lines.map((line) => DeployEvent.parse(JSON.parse(line)));
    } catch (error) {
      throw new Error(`${(error as Error).message}\nstderr:\n${result.stderr.slice(-4000)}`);
    }
    return { result, events, counter, runTag };
  }

  const deployedOf = (user: string): string => {
    try {
      return fs.readFileSync(path.join('/home', user, 'deployed'), 'utf8');
    } catch {
      return '';
    }
  };

  it('20 site users at once: the run-once task runs once, one failing site fails alone, exit 1 names exactly it', async () => {
    const { result, events, counter, runTag } = await fleetRun('twenty', ['--site', 'twenty', '--parallel', '20']);
    expect(result.code, result.stderr.slice(-3000)).toBe(1);

    const end = events.at(-1);
    if (end?.type !== 'run:end') throw new Error(`no run:end event; stderr:\n${result.stderr.slice(-3000)}`);
    expect(end.exitCode).toBe(1);
    const notOk = end.summary.filter((row) => row.status !== 'ok');
    expect(notOk.map((row) => row.site), JSON.stringify(notOk, null, 2)).toEqual([FAILING]);
    expect(notOk[0]).toMatchObject({ status: 'failed', failedTask: 'deploy', failedCommand: 'echo "migration failed" >&2; exit 7' });
    expect(end.summary.map((row) => row.site)).toEqual(TWENTY);

    // Run-once: exactly one build, before any site ran its first remote command.
    expect(fs.readFileSync(counter, 'utf8')).toBe('built\n');
    expect(events.filter((e) => e.type === 'task:start' && e.task === 'build')).toHaveLength(1);

    // Every site's own account got this run; the failing one stopped before its last step.
    for (const user of TWENTY) {
      expect(deployedOf(user), user).toBe(user === FAILING ? `${runTag}\n` : `${runTag}\nok\n`);
    }
    // Each site ran as its own user, and its output was tagged with its own name.
    const whoami = new Map<string, string>();
    for (const e of events) if (e.type === 'output' && e.site && /^fleet\d\d\n$/.test(e.chunk)) whoami.set(e.site, e.chunk.trim());
    for (const user of TWENTY) expect(whoami.get(user)).toBe(user);

    // The human summary on stderr names the failure too.
    expect(result.stderr).toMatch(/Summary: 19 ok, 1 failed \(20 sites\)/);
    expect(result.stderr).toMatch(new RegExp(`${FAILING}\\s+failed at deploy: echo "migration failed" >&2; exit 7`));
    // sshd never had to throttle: no connection was dropped past MaxStartups.
    expect(fs.readFileSync(sshd!.logPath, 'utf8')).not.toMatch(/past MaxStartups|MaxStartups throttling/);
  });

  it('50 site users at once all succeed on a stock sshd', async () => {
    const { result, events, runTag } = await fleetRun('fifty', ['--site', 'fleet*', '--exclude', FAILING, '--parallel', '50']);
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const end = events.at(-1);
    if (end?.type !== 'run:end') throw new Error('no run:end event');
    expect(end.summary).toHaveLength(49);
    expect(end.summary.every((row) => row.status === 'ok'), JSON.stringify(end.summary.filter((row) => row.status !== 'ok'), null, 2)).toBe(true);
    for (const user of USERS) if (user !== FAILING) expect(deployedOf(user), user).toBe(`${runTag}\nok\n`);
    // The sites overlapped: more were running at once than sshd lets handshake at once.
    let running = 0;
    let peak = 0;
    for (const e of events) {
      if (e.type === 'site:start') peak = Math.max(peak, ++running);
      if (e.type === 'site:end') running--;
    }
    expect(peak).toBeGreaterThan(10);
    expect(fs.readFileSync(sshd!.logPath, 'utf8')).not.toMatch(/past MaxStartups|MaxStartups throttling/);
  });

  it('as a CI job: the key from DEPLOY_SSH_KEY, options from DEPLOY_* variables, 20 sites at once', async () => {
    const runTag = `ci-${Date.now()}`;
    const started = performance.now();
    const result = await deploy(['run', 'deploy', '-f', 'ci.deployfile.ts'], {
      cwd: work,
      env: { ...env, FLEET_RUN: runTag, DEPLOY_SSH_KEY: operatorKey, DEPLOY_JSON: '1', DEPLOY_PARALLEL: '20', DEPLOY_MAX_FAILURES: '1' },
      timeoutMs: 150_000,
    });
    timings.push(`ci (DEPLOY_SSH_KEY, 20 sites): ${((performance.now() - started) / 1000).toFixed(1)} s wall, exit ${result.code}`);
    expect(result.code, result.stderr.slice(-3000)).toBe(0);
    const end = DeployEvent.parse(JSON.parse(result.stdout.trim().split('\n').at(-1)!));
    expect(end.type === 'run:end' && end.summary.map((row) => row.status)).toEqual(Array(20).fill('ok'));
    for (const user of TWENTY) expect(deployedOf(user), user).toBe(`${runTag}\nok\n`);
    // The key was used from memory: nothing under the operator's HOME but known_hosts.
    expect(fs.readdirSync(path.join(env.HOME!, '.ssh'))).toEqual(['known_hosts']);
  });

  it('including the failing one: 50 at once, the other 49 succeed', async () => {
    const { result, events } = await fleetRun('fifty-with-failure', ['--parallel', '50']);
    expect(result.code).toBe(1);
    const end = events.at(-1);
    if (end?.type !== 'run:end') throw new Error('no run:end event');
    expect(end.summary.filter((row) => row.status !== 'ok').map((row) => row.site)).toEqual([FAILING]);
  });
});
