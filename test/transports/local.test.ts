import { afterEach, describe, expect, it } from 'vitest';
import { childEnv, LocalTransport } from '../../src/transports/local.ts';

const SECRET_VARS = { DEPLOY_SSH_KEY: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n', DEPLOY_SUDO_PASSWORD: 'sudo-pw-123', DEPLOY_SSH_PASSPHRASE: 'pass-phrase-456' };
const saved = Object.fromEntries(Object.keys(SECRET_VARS).map((name) => [name, process.env[name]]));

afterEach(() => {
  for (const [name, value] of Object.entries(saved)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

async function run(transport: LocalTransport, command: string): Promise<string> {
  let out = '';
  await transport.exec(command, { onStdout: (chunk) => (out += chunk) });
  return out;
}

describe('LocalTransport environment', () => {
  it("c.local children do not inherit DEPLOY_SSH_KEY, DEPLOY_SUDO_PASSWORD or DEPLOY_SSH_PASSPHRASE; the rest of the operator's environment passes", async () => {
    Object.assign(process.env, SECRET_VARS);
    process.env.DEPLOYFILE_TEST_KEEP = 'kept';
    try {
      const transport = new LocalTransport();
      expect(await run(transport, 'printenv DEPLOY_SSH_KEY; echo "rc=$?"')).toBe('rc=1\n');
      expect(await run(transport, 'env | grep -c "^DEPLOY_S" || true')).toBe('0\n');
      expect(await run(transport, 'printenv DEPLOYFILE_TEST_KEEP')).toBe('kept\n');
    } finally {
      delete process.env.DEPLOYFILE_TEST_KEEP;
    }
  });

  it('an environment given to the transport is stripped of the secrets too, and not changed', async () => {
    const env = { PATH: process.env.PATH, ...SECRET_VARS };
    expect(await run(new LocalTransport({ env }), 'env | grep -c "^DEPLOY_S" || true')).toBe('0\n');
    expect(childEnv(env)).toEqual({ PATH: process.env.PATH });
    expect(env.DEPLOY_SUDO_PASSWORD).toBe('sudo-pw-123');
  });
});
