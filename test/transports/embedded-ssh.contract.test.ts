import { rm } from 'node:fs/promises';
import { afterAll, beforeAll } from 'vitest';
import { startSshFixture, type SshFixture } from '../helpers/embedded-site.ts';
import { transportContract } from './contract.ts';

// The embedded SSH server through the ssh transport, set up as test/runner/over-ssh.test.ts does.
let fx: SshFixture;
let count = 0;
beforeAll(async () => {
  fx = await startSshFixture(['alleged']);
});
afterAll(async () => {
  await fx?.close();
});

transportContract('SshTransport to the embedded SSH server', async () => {
  const transport = fx.transportFor({ name: 'alleged', user: 'alleged', host: fx.server.host, port: fx.server.port, vars: {} } as Parameters<SshFixture['transportFor']>[0]);
  const remoteDir = `${fx.homes.alleged}/contract-${++count}`;
  await transport.exec(`mkdir -p '${remoteDir}'`, {});
  return { transport, remoteDir, cleanup: () => rm(remoteDir, { recursive: true, force: true }) };
});
