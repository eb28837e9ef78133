import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, startEmbeddedSshServer, type EmbeddedSshServer } from '../../demo/embedded-ssh/server.ts';
import { EventBus, type DeployEvent } from '../../src/core/events.ts';
import type { ResolvedSite } from '../../src/config/load.ts';
import { validateDeployfile } from '../../src/config/validate.ts';
import type { DeployfileConfig } from '../../src/config/define.ts';
import { execute, type ExecuteOptions } from '../../src/executor/executor.ts';
import { PolicyPrompter, type Prompter } from '../../src/prompts/prompter.ts';
import { LocalTransport } from '../../src/transports/local.ts';
import { SshTransport } from '../../src/transports/ssh.ts';

/** An embedded SSH server with one temp home per site user, and a key that opens them. */
export interface SshFixture {
  server: EmbeddedSshServer;
  homes: Record<string, string>;
  privateKey: string;
  transports: SshTransport[];
  transportFor(site: ResolvedSite): SshTransport;
  close(): Promise<void>;
}

export async function startSshFixture(users: string[]): Promise<SshFixture> {
  const root = await mkdtemp(join(tmpdir(), 'deployfile-ssh-'));
  const homes: Record<string, string> = {};
  for (const user of users) {
    homes[user] = join(root, user);
    await mkdir(homes[user], { recursive: true });
  }
  const keys = generateKeyPair();
  const server = await startEmbeddedSshServer({ homes, authorizedKeys: [keys.publicKey] });
  const transports: SshTransport[] = [];
  const fixture: SshFixture = {
    server,
    homes,
    privateKey: keys.privateKey,
    transports,
    transportFor(site) {
      const expected = server.hostPublicKey.split(' ')[1];
      const transport = new SshTransport({
        site: site.name,
        host: server.host,
        port: server.port,
        username: site.user,
        auth: [{ type: 'key', privateKey: keys.privateKey, label: 'test key' }],
        hostVerifier: (key) => key.toString('base64') === expected || 'host key mismatch',
      });
      transports.push(transport);
      return transport;
    },
    close: async () => {
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return fixture;
}

/** Records every event: the oracle for behaviour tests (like listr2's test renderer). */
export function recorder(): { bus: EventBus; events: DeployEvent[]; of<T extends DeployEvent['type']>(type: T): Extract<DeployEvent, { type: T }>[] } {
  const bus = new EventBus('test-run');
  const events: DeployEvent[] = [];
  bus.on((event) => events.push(event));
  return { bus, events, of: (type) => events.filter((event) => event.type === type) as never };
}

/** Run tasks of an in-memory deployfile over the fixture, like `deploy run` does. */
export async function runDeployfile(
  fixture: SshFixture,
  config: DeployfileConfig,
  tasks: string[],
  options: Partial<ExecuteOptions> & { prompter?: Prompter } = {},
) {
  const deployfile = validateDeployfile(config, 'deployfile.ts');
  const rec = recorder();
  const outcome = await execute({
    deployfile,
    tasks,
    sites: deployfile.sites,
    bus: rec.bus,
    prompter: options.prompter ?? new PolicyPrompter({ yes: false, onFailure: 'abort' }),
    transportFor: (site) => fixture.transportFor(site),
    local: new LocalTransport(),
    ...options,
  });
  return { outcome, ...rec };
}

/** Sites on the fixture's server, one per user. */
export function sitesOn(fixture: SshFixture, vars: Record<string, unknown> = {}): DeployfileConfig['sites'] {
  return Object.fromEntries(Object.keys(fixture.homes).map((user) => [user, { host: fixture.server.host, port: fixture.server.port, vars }]));
}
