// Twenty sites on one sshd whose MaxStartups turns most handshakes away:
// every site must still succeed, through connection retries that the run
// reports. Real OpenSSH on loopback, the built `deploy` binary.
//
// Root on Debian 12: npx vitest run --config vitest.e2e.config.ts test/reliability
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lab from '../lab/lab.ts';
import { RELIABILITY_LAB_DIR, deployfileSource, historyOf, lockDirOf, operatorHome, runDeploy } from './harness.ts';

// lab.ts reads it when called, not when imported.
process.env.DEPLOYFILE_LAB_DIR = RELIABILITY_LAB_DIR;

const SITES = Array.from({ length: 20 }, (_, i) => `rms${String(i + 1).padStart(2, '0')}`);
const skipReason = lab.labUnavailableReason();

describe.skipIf(skipReason !== undefined)(`MaxStartups${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let sshd: lab.Sshd;
  let dir: string;
  let home: string;
  let env: NodeJS.ProcessEnv;
  const users: lab.UnixUser[] = [];

  beforeAll(async () => {
    const key = await lab.createOperatorKey();
    for (const name of SITES) users.push(await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] }));
    for (const user of users) fs.rmSync(path.join(user.home, '.deployfile'), { recursive: true, force: true });
    // From 2 unauthenticated connections on, sshd drops 90% of new ones; from 3, all.
    sshd = await lab.startSshd({ extraConfig: 'MaxStartups 2:90:3' });
    ({ home, env } = operatorHome(sshd.knownHostsLines));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-maxstartups-'));
    const sites = Object.fromEntries(SITES.map((name) => [name, { host: lab.LOOPBACK, port: sshd.port, identityFile: key.privateKeyPath }]));
    fs.writeFileSync(path.join(dir, 'deployfile.ts'), deployfileSource(sites, `    hello: async (c) => { await c.run('echo hello from $USER'); },\n`));
  });

  afterAll(async () => {
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('20 sites at once: every site succeeds through retries, and the run says it retried', async () => {
    const logFrom = fs.statSync(sshd.logPath).size;
    const result = await runDeploy(['run', 'hello', '-p', '20'], { cwd: dir, env });
    const sshdLog = fs.readFileSync(sshd.logPath, 'utf8').slice(logFrom);
    // sshd logs the first drop of a burst, then "exited MaxStartups throttling after 00:00:00, 17 connections dropped".
    const summed = [...sshdLog.matchAll(/(\d+) connections dropped/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    const dropped = Math.max(summed, sshdLog.split('\n').filter((line) => /past MaxStartups/.test(line)).length);
    const retries = result.stdout.split('\n').filter((line) => /retrying in/.test(line));
    console.log(`sshd dropped ${dropped} handshakes (past MaxStartups); deploy retried ${retries.length} times`);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Summary: 20 ok');
    for (const name of SITES) expect(result.stdout).toContain(`[${name}]   hello from ${name}`);
    // The load was real, and the run said what it did about it.
    expect(dropped).toBeGreaterThan(0);
    expect(retries.length).toBeGreaterThan(0);
    expect(retries[0]).toMatch(/^\[rms\d\d\] warning: could not connect to .+; retrying in \S+ \(attempt 2 of \d+\)$/);
    for (const user of users) {
      expect(fs.existsSync(lockDirOf(user))).toBe(false);
      expect(fs.readFileSync(historyOf(user), 'utf8')).toContain('"outcome":"ok"');
    }
  });
});
