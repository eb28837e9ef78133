import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalTransport } from '../../src/transports/local.ts';
import { transportContract } from './contract.ts';

transportContract('LocalTransport', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deployfile-local-contract-'));
  return { transport: new LocalTransport(), remoteDir: dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
});
