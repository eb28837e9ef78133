// The transport contract against real OpenSSH on loopback, as a deploy
// reaches a server. Root only (it creates a Unix user and an sshd); runs in
// `npm run test:e2e`, skipped elsewhere. Never reads ~/.ssh: the operator key
// is the lab's, the host key is checked against the lab sshd's own.
import fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe } from 'vitest';
import { SshTransport } from '../../src/transports/ssh.ts';
import * as lab from '../lab/lab.ts';
import { transportContract } from './contract.ts';

const USER = 'dfcontract';
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

  transportContract('SshTransport to OpenSSH', async () => {
    const known = new Set(sshd.knownHostsLines.map((line) => line.split(' ')[2]));
    const transport = new SshTransport({
      site: USER,
      host: sshd.host,
      port: sshd.port,
      username: USER,
      auth: [{ type: 'key', privateKey: readFileSync(key.privateKeyPath, 'utf8'), label: 'lab key' }],
      hostVerifier: (hostKey) => known.has(hostKey.toString('base64')) || 'host key mismatch',
    });
    const remoteDir = `${home}/contract-${++count}`;
    await transport.exec(`mkdir -p '${remoteDir}'`, {});
    return { transport, remoteDir, cleanup: () => rm(remoteDir, { recursive: true, force: true }) };
  });
});
