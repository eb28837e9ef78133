import { describe, expect, it } from 'vitest';
import { validateDeployfile } from '../../src/config/validate.ts';
import type { DeployfileConfig } from '../../src/config/define.ts';
import { EventBus } from '../../src/core/events.ts';
import { execute } from '../../src/executor/executor.ts';
import { PolicyPrompter } from '../../src/prompts/policy.ts';
import { FakeTransport } from '../helpers/fake-transport.ts';

/** Two sites where sudo needs no password (the probe says so); one run per call, each with its own transports. */
async function run(tasks: DeployfileConfig['tasks']) {
  const deployfile = validateDeployfile({ sites: { web1: { host: 'h1' }, web2: { host: 'h2' } }, tasks }, 'deployfile.ts');
  const remotes = new Map<string, FakeTransport>();
  await execute({
    deployfile,
    tasks: Object.keys(tasks ?? {}),
    sites: deployfile.sites,
    bus: new EventBus('r'),
    prompter: new PolicyPrompter({ yes: false, onFailure: 'abort' }),
    transportFor: (site) => {
      const remote = new FakeTransport(`deploy@${site.host}:22`, { site: site.name });
      remotes.set(site.name, remote);
      return remote;
    },
    local: new FakeTransport('local'),
    locks: false,
    sudoPassword: async () => 'sudo-pw-0042',
  });
  const probes = (name: string) => remotes.get(name)?.commands.filter((c) => c.startsWith('sudo -k -n ')).length;
  return { probes };
}

describe('what a site learns during a run belongs to that site and that run', () => {
  const tasks: DeployfileConfig['tasks'] = {
    t: async (c) => {
      await c.sudo('id -un');
      await c.sudo('id -un');
      await c.sudo('id -un', { user: 'www' });
    },
  };

  it('sudo is probed once per site and target user, on each site', async () => {
    const { probes } = await run(tasks);
    expect([probes('web1'), probes('web2')]).toEqual([2, 2]);
  });

  it('a second run probes again: nothing is remembered from one run to the next', async () => {
    await run(tasks);
    const { probes } = await run(tasks);
    expect([probes('web1'), probes('web2')]).toEqual([2, 2]);
  });
});
