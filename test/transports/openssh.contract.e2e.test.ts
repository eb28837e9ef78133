// The transport contract against real OpenSSH on loopback, as a deploy
// reaches a server. Root only (it creates a Unix user and an sshd); runs in
// `npm run test:e2e`, skipped elsewhere. Never reads ~/.ssh: the operator key
// is the lab's, the host key is checked against the lab sshd's own.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshTransport } from '../../src/transports/ssh.ts';
import * as lab from '../lab/lab.ts';
import { execCollect, transportContract } from './contract.ts';

const USER = 'dfcontract';
/** A user whose login shell is rbash: it refuses `exec /bin/sh`, so the shared shell cannot start there. */
const RESTRICTED = 'dfrestricted';
const TOOLS = ['/usr/sbin/sshd', '/usr/bin/ssh-keygen'];

function unavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root: it creates a Unix user and an sshd instance';
  const missing = TOOLS.filter((t) => !fs.existsSync(t));
  if (missing.length) return `missing ${missing.join(', ')} (apt-get install openssh-server openssh-client)`;
  return undefined;
}
const skipReason = unavailable();

describe.skipIf(skipReason !== undefined)(`OpenSSH${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let sshd: lab.Sshd;
  let key: lab.OperatorKey;
  let home: string;
  let count = 0;

  beforeAll(async () => {
    key = await lab.createOperatorKey();
    home = (await lab.createSiteUser(USER, { authorizedKeys: [key.publicKey] })).home;
    sshd = await lab.startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  /** The lab's key, the lab sshd's own host keys. */
  function labTransport(user: string): SshTransport {
    const known = new Set(sshd.knownHostsLines.map((line) => line.split(' ')[2]));
    return new SshTransport({
      site: user,
      host: sshd.host,
      port: sshd.port,
      username: user,
      auth: [{ type: 'key', privateKey: readFileSync(key.privateKeyPath, 'utf8'), label: 'lab key' }],
      hostVerifier: (hostKey) => known.has(hostKey.toString('base64')) || 'host key mismatch',
    });
  }

  transportContract('SshTransport to OpenSSH', async () => {
    const transport = labTransport(USER);
    const remoteDir = `${home}/contract-${++count}`;
    await transport.exec(`mkdir -p '${remoteDir}'`, {});
    return { transport, remoteDir, cleanup: () => rm(remoteDir, { recursive: true, force: true }) };
  });

  it('on a server where the shared shell cannot start (rbash), runs each command once, in a session of its own', async () => {
    const user = await lab.createSiteUser(RESTRICTED, { authorizedKeys: [key.publicKey] });
    execFileSync('usermod', ['-s', '/bin/rbash', RESTRICTED]);
    const transport = labTransport(RESTRICTED);
    try {
      await rm(`${user.home}/once`, { recursive: true, force: true });
      // Run twice (a try in the shell, then a session), the second mkdir would fail.
      expect(await execCollect(transport, 'mkdir once && echo made')).toMatchObject({ exitCode: 0, stdout: 'made\n', stderr: '' });
      // sshd starts a session's shell as "rbash"; the shared shell would have run it as "$SHELL" (/bin/rbash).
      expect(await execCollect(transport, 'echo "$0"; exit 4')).toMatchObject({ exitCode: 4, stdout: 'rbash\n' });
    } finally {
      await transport.close();
      await rm(`${user.home}/once`, { recursive: true, force: true });
    }
  });
});
