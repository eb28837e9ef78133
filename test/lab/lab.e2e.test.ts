// The lab itself, end to end: if this fails, every other e2e test and the
// benchmark would fail for reasons that have nothing to do with deployfile.
// Run: npx vitest run --config vitest.e2e.config.ts test/lab
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lab from './lab.ts';

const exec = promisify(execFile);
const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'django-site');
const SITES = ['alleged', 'bravo'] as const;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`lab${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let sshd: lab.Sshd;
  let nginx: lab.Nginx;
  const origins: Record<string, lab.OriginRepo> = {};

  beforeAll(async () => {
    // A lab left running by the CLI or a crashed run holds the emperor and ports.
    await lab.teardown();
    key = await lab.createOperatorKey();
    const sites: lab.DjangoSite[] = [];
    for (const name of SITES) {
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      origins[name] = await lab.createOriginRepo(name, EXAMPLE);
      sites.push(await lab.setupDjangoSite(name, { origin: origins[name], settingsPackage: 'example_site' }));
    }
    sshd = await lab.startSshd();
    await lab.startEmperor();
    nginx = await lab.startNginx(sites.map((s) => ({ name: s.name, socket: s.socketPath, staticRoot: path.join(s.user.home, 'static') })));
  });

  afterAll(async () => {
    await lab.teardown();
  });

  it('starts sshd on loopback with the lab host keys in known_hosts', () => {
    expect(sshd.host).toBe('127.0.0.1');
    const knownHosts = fs.readFileSync(sshd.knownHostsPath, 'utf8');
    for (const line of sshd.knownHostsLines) {
      expect(line.startsWith(`[127.0.0.1]:${sshd.port} `)).toBe(true);
      expect(knownHosts).toContain(line);
    }
    expect(sshd.hostKeyFingerprints.every((f) => /^SHA256:[A-Za-z0-9+/]{43}$/.test(f))).toBe(true);
  });

  it.each(SITES)('logs in over ssh as %s with the operator key', async (name) => {
    const [cmd, ...args] = lab.sshArgv({ keyPath: key.privateKeyPath, port: sshd.port, user: name, command: 'whoami' });
    const { stdout } = await exec(cmd!, args);
    expect(stdout.trim()).toBe(name);
  });

  it.each(SITES)('serves the Django page of %s through nginx and uWSGI', async (name) => {
    const { body } = await lab.waitForHttp(nginx.urls[name]!, (b, s) => s === 200 && b.includes('id="revision"'), 60_000);
    expect(body).toContain(`<code id="revision">${origins[name]!.initialRevision}</code>`);
  });

  it('reloads a site when its user pulls and touches the vassal over ssh', async () => {
    const name = SITES[0];
    const origin = origins[name]!;
    fs.appendFileSync(path.join(origin.workDir, 'README.md'), '\nlab reload check\n');
    const rev = await lab.commitAndPush(origin, 'Lab: reload check');
    const [cmd, ...args] = lab.sshArgv({
      keyPath: key.privateKeyPath,
      port: sshd.port,
      user: name,
      command: `cd ~/Sites/${name} && git pull -q --ff-only && touch ${lab.vassalPath(name)}`,
    });
    await exec(cmd!, args);
    await lab.waitForHttp(`${nginx.urls[name]}revision`, (b) => b === rev, 60_000);
    // The vassal's log is the site user's, so a task over ssh can show it.
    expect(fs.statSync(lab.siteLogPath(name)).uid).toBe((await lab.lookupUser(name))!.uid);
  });
});
