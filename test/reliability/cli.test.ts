// `deploy unlock` and `deploy history` as users run them: the built binary,
// its own HOME (known_hosts, key), against the embedded SSH server.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHistory } from '../../src/cli/history.ts';
import { generateKeyPair, startEmbeddedSshServer, type EmbeddedSshServer } from '../../demo/embedded-ssh/server.ts';
import { recordAndRelease } from '../../src/connection/finish.ts';
import { acquireLock, lockInfoFor } from '../../src/connection/lock.ts';
import { LocalTransport } from '../../src/transports/local.ts';
import { style } from '../../src/views/style.ts';
import { deploy } from '../helpers/cli.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

let dir: string;
let siteHome: string;
let operatorHome: string;
let strangerHome: string;
let server: EmbeddedSshServer;
/** The site user's shell, for setting up its ~/.deployfile the way a deploy would. */
let onSite: LocalTransport;

beforeAll(async () => {
  dir = await tempDir('deployfile-unlock-');
  siteHome = join(dir, 'alleged');
  await mkdir(siteHome);
  const keys = generateKeyPair();
  server = await startEmbeddedSshServer({ homes: { alleged: siteHome }, authorizedKeys: [keys.publicKey] });
  await writeFile(join(dir, 'id_ed25519'), keys.privateKey, { mode: 0o600 });
  operatorHome = join(dir, 'operator');
  await mkdir(join(operatorHome, '.ssh'), { recursive: true });
  await writeFile(join(operatorHome, '.ssh', 'known_hosts'), `[${server.host}]:${server.port} ${server.hostPublicKey}\n`);
  strangerHome = join(dir, 'stranger');
  await mkdir(join(strangerHome, '.ssh'), { recursive: true });
  await writeFile(
    join(dir, 'deployfile.ts'),
    `export default { sites: { alleged: { host: '${server.host}', port: ${server.port}, identityFile: ${JSON.stringify(join(dir, 'id_ed25519'))} } }, tasks: { t: async () => {} } };\n`,
  );
  onSite = new LocalTransport({ cwd: siteHome, env: { PATH: process.env.PATH, HOME: siteHome } });
});
afterAll(async () => {
  await server?.close();
});

const run = (args: string[], home = operatorHome) => deploy(args, { cwd: dir, env: { HOME: home, SSH_AUTH_SOCK: '' } });

describe('deploy unlock', () => {
  it('says when the site is not locked', async () => {
    const { code, stdout } = await run(['unlock', 'alleged']);
    expect(code).toBe(0);
    expect(stdout).toContain('site alleged is not locked');
  });

  it('shows who holds the lock, then removes it', async () => {
    await acquireLock(onSite, { ...lockInfoFor('run-9', ['deploy', 'migrate']), operator: 'alice@laptop', host: 'laptop', pid: 4242, since: '2025-05-01T10:00:00.000Z' });
    const { code, stdout } = await run(['unlock', 'alleged']);
    expect(code).toBe(0);
    expect(stdout).toContain('site alleged is locked by alice@laptop (pid 4242) since 2025-05-01T10:00:00.000Z, running deploy, migrate');
    expect(stdout).toContain('removed the deploy lock of site alleged');
    expect(existsSync(join(siteHome, '.deployfile', 'lock'))).toBe(false);
  });

  it('refuses, without a TTY, to remove a lock whose holder still runs on this machine; --force removes it', async () => {
    // A live process of ours stands in for a deploy still holding the lock.
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await acquireLock(onSite, { ...lockInfoFor('run-live', ['deploy']), pid: holder.pid!, host: hostname() });
      const refused = await run(['unlock', 'alleged']);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain(`site alleged is locked by`);
      expect(refused.stdout).toContain(`not removed: its holder, process ${holder.pid} (sleep 30), is still running on this machine`);
      expect(refused.stdout).toContain(`Stop it (kill ${holder.pid}: it releases the lock itself), or remove the lock anyway with: deploy unlock alleged --force`);
      expect(existsSync(join(siteHome, '.deployfile', 'lock'))).toBe(true);
      const forced = await run(['unlock', 'alleged', '--force']);
      expect(forced.code).toBe(0);
      expect(forced.stdout).toContain('removed the deploy lock of site alleged');
      expect(existsSync(join(siteHome, '.deployfile', 'lock'))).toBe(false);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('an unknown site is a usage error that suggests the closest, exit 2', async () => {
    for (const command of ['unlock', 'history']) {
      const { code, stderr } = await run([command, 'aleged']);
      expect(code).toBe(2);
      expect(stderr).toContain('unknown site "aleged" (did you mean "alleged"?)');
    }
  });

  it('a server whose host key is not known is refused at once (no retries), exit 1', async () => {
    const { code, stderr } = await run(['unlock', 'alleged'], strangerHome);
    expect(code).toBe(1);
    expect(stderr).toMatch(/host key/i);
    expect(stderr).not.toContain('retrying');
  });
});

describe('deploy history', () => {
  it('says when nothing is recorded', async () => {
    const { code, stdout } = await run(['history', 'alleged']);
    expect(code).toBe(0);
    expect(stdout).toContain('no deploys recorded for site alleged');
  });

  it('shows the records on the server newest first; --json and --limit', async () => {
    await recordAndRelease(onSite, { time: '2025-05-01T09:00:00.000Z', operator: 'alice@laptop', tasks: ['deploy'], outcome: 'ok', durationMs: 41200, runId: 'a' }, 'a', {});
    await recordAndRelease(onSite, { time: '2025-05-02T10:00:00.000Z', operator: 'bob@ci', revision: 'cafe0123456789abcdef', tasks: ['push', 'deploy'], outcome: 'failed', failedTask: 'deploy', durationMs: 4100, runId: 'b' }, 'b', {});
    const { code, stdout } = await run(['history', 'alleged']);
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toEqual([
      'time                  operator      revision      tasks         outcome           duration',
      '2025-05-02 10:00:00Z  bob@ci        cafe01234567  push, deploy  failed at deploy  4.1s',
      '2025-05-01 09:00:00Z  alice@laptop  -             deploy        ok                41.2s',
    ]);
    const json = await run(['history', 'alleged', '--json', '-n', '1']);
    expect(json.stdout.trim().split('\n').map((line) => JSON.parse(line).runId)).toEqual(['b']);
    expect((await run(['history', 'alleged', '-n', '0'])).code).toBe(2);
  });

  it('renders with colour off as plain columns', () => {
    expect(renderHistory([{ time: '2025-05-01T09:00:00.000Z', operator: 'a@b', tasks: ['t'], outcome: 'interrupted', failedTask: 't', durationMs: 10, runId: 'x' }], style(false))).toContain('interrupted at t');
  });
});

describe('help', () => {
  it('documents both commands', async () => {
    const help = await deploy(['--help']);
    expect(help.stdout).toMatch(/unlock \[options\] <site>\s+show who holds a site's deploy lock/);
    expect(help.stdout).toMatch(/history \[options\] <site>\s+a site's deploys, newest first/);
  });
});
