import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2, { type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  publicKeyFingerprint,
  generateKeyPair,
  startEmbeddedSshServer,
  type EmbeddedSshServer,
  type EmbeddedSshServerOptions,
} from '../../../demo/embedded-ssh/server.ts';
import { groupAlive } from '../../../demo/embedded-ssh/exec.ts';

const { BaseAgent, Client, utils } = ssh2;

const clientKey = generateKeyPair('tester');
const otherKey = generateKeyPair('intruder');

let tmp: string;
let home: string;
const servers: EmbeddedSshServer[] = [];
const clients: InstanceType<typeof Client>[] = [];

beforeEach(async () => {
  tmp = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'embedded-ssh-')));
  home = path.join(tmp, 'home');
  await fs.mkdir(home);
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.end();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await fs.rm(tmp, { recursive: true, force: true });
});

async function start(opts: Partial<EmbeddedSshServerOptions> = {}): Promise<EmbeddedSshServer> {
  const server = await startEmbeddedSshServer({ home, authorizedKeys: [clientKey.publicKey], ...opts });
  servers.push(server);
  return server;
}

function connect(
  server: EmbeddedSshServer,
  config: Partial<ConnectConfig> = {},
): Promise<InstanceType<typeof Client>> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    clients.push(client);
    client
      .on('ready', () => {
        client.setNoDelay(true); // else every exec waits out a delayed ACK (~40 ms)
        resolve(client);
      })
      .on('error', reject)
      .connect({
        host: server.host,
        port: server.port,
        username: 'deploy',
        privateKey: clientKey.privateKey,
        // Pin the host key like a known_hosts entry would.
        hostVerifier: (key: Buffer) => key.toString('base64') === server.hostPublicKey.split(' ')[1],
        ...config,
      });
  });
}

interface RunResult {
  code: number | null;
  signal: string | undefined;
  stdout: string;
  stderr: string;
}

function openExec(client: InstanceType<typeof Client>, command: string, opts: ssh2.ExecOptions = {}): Promise<ClientChannel> {
  return new Promise((resolve, reject) =>
    client.exec(command, opts, (err, stream) => (err ? reject(err) : resolve(stream))),
  );
}

/** Collects a channel's output until it closes, with its exit status. */
function collect(stream: ClientChannel): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let code: number | null = null;
    let signal: string | undefined;
    stream.on('data', (d: Buffer) => (stdout += d.toString()));
    stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // ssh2 also passes the exit status to 'close'. Rely on that: a fast
    // command's 'exit' can fire before an awaited exec() lets us listen.
    stream.on('close', (c?: number | null, s?: string) => {
      if (c !== undefined) code = c;
      signal = s ?? undefined;
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function run(client: InstanceType<typeof Client>, command: string, opts: ssh2.ExecOptions = {}): Promise<RunResult> {
  return collect(await openExec(client, command, opts));
}

/** Resolves with the first line the command prints (e.g. a pid). */
function firstLine(stream: ClientChannel): Promise<string> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        stream.off('data', onData);
        resolve(buf.slice(0, nl));
      }
    };
    stream.on('data', onData);
  });
}

/** Killed processes take a moment to go (groupAlive ignores zombies). */
async function waitGone(pgid: number, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

function openSftp(client: InstanceType<typeof Client>): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
}

/** Promisifies an SFTPWrapper method call. */
function p<T = void>(fn: (cb: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
}

describe('exec', () => {
  it('reports exit code, stdout and stderr, and runs in the home with a clean env', async () => {
    const server = await start({ env: { EXTRA: 'yes' } });
    const client = await connect(server);
    const res = await run(client, 'echo out; echo err >&2; pwd; echo "$HOME $USER $LOGNAME $EXTRA"; exit 3');
    expect(res).toEqual({
      code: 3,
      signal: undefined,
      stdout: `out\n${home}\n${home} deploy deploy yes\n`,
      stderr: 'err\n',
    });
    expect(server.stats.commands).toEqual([
      'echo out; echo err >&2; pwd; echo "$HOME $USER $LOGNAME $EXTRA"; exit 3',
    ]);
  });

  it('streams large interleaved stdout/stderr intact to a slow reader, then the exit status', async () => {
    const server = await start();
    const client = await connect(server);
    // ~5 MiB per stream, far over ssh2's 2 MiB channel window, alternating
    // streams while the window is exhausted (this hung with plain pipe()s).
    const stream = await openExec(
      client,
      'for i in 1 2 3 4 5; do seq 1 150000; seq 1 150000 >&2; done; exit 7',
    );
    const done = collect(stream);
    stream.pause();
    stream.stderr.pause();
    await new Promise((r) => setTimeout(r, 300));
    stream.resume();
    stream.stderr.resume();
    const res = await done;
    const one = Array.from({ length: 150000 }, (_, i) => `${i + 1}\n`).join('');
    const expected = one.repeat(5);
    expect(res.code).toBe(7);
    expect(res.stdout.length).toBe(expected.length);
    expect(res.stdout === expected).toBe(true);
    expect(res.stderr === expected).toBe(true);
  });

  it('ignores client env requests like sshd without AcceptEnv, and accepts a pty request', async () => {
    const server = await start();
    const client = await connect(server);
    const res = await run(client, 'echo "[$LEAK]"', { env: { LEAK: 'x' }, pty: true });
    expect(res.stdout.replace(/\r/g, '')).toBe('[]\n');
    expect(res.code).toBe(0);
  });

  it('reports a command killed by a signal as exit-signal', async () => {
    const server = await start();
    const client = await connect(server);
    const res = await run(client, 'kill -TERM $$');
    expect(res.code).toBeNull();
    expect(res.signal).toBe('SIGTERM'); // ssh2's client re-adds the SIG prefix
  });

  it('kills the whole process group on a client signal request', async () => {
    const server = await start();
    const client = await connect(server);
    const stream = await openExec(client, 'echo $$; sleep 30; echo not reached');
    const done = collect(stream);
    const pgid = Number(await firstLine(stream));
    expect(groupAlive(pgid)).toBe(true);
    stream.signal('TERM');
    const res = await done;
    expect(res.signal).toBe('SIGTERM');
    expect(res.stdout).not.toContain('not reached');
    expect(await waitGone(pgid)).toBe(true); // sleep died too, not just sh
  });

  it('kills the command when the client closes the channel early', async () => {
    const server = await start();
    const client = await connect(server);
    const stream = await openExec(client, 'echo $$; sleep 30');
    const pgid = Number(await firstLine(stream));
    stream.close();
    expect(await waitGone(pgid)).toBe(true);
    // The connection stays usable.
    expect((await run(client, 'echo still here')).stdout).toBe('still here\n');
  });

  it('pipes channel input to stdin and ends it on EOF', async () => {
    const server = await start();
    const client = await connect(server);
    const stream = await openExec(client, 'read first; echo "first=$first"; tr a-z A-Z');
    const done = collect(stream);
    stream.write('hello\n');
    stream.write('rest of ');
    stream.end('input\n');
    const res = await done;
    expect(res.stdout).toBe('first=hello\nREST OF INPUT\n');
    expect(res.code).toBe(0);
  });

  it('does not hang when the command ignores its input', async () => {
    const server = await start();
    const client = await connect(server);
    const stream = await openExec(client, 'exit 0');
    const done = collect(stream);
    stream.end(Buffer.alloc(256 * 1024));
    expect((await done).code).toBe(0);
  });

  it('runs many channels per connection, sequentially and concurrently', async () => {
    const server = await start();
    const client = await connect(server);
    for (let i = 0; i < 3; i++) expect((await run(client, `echo seq${i}`)).stdout).toBe(`seq${i}\n`);
    const parallel = await Promise.all(
      Array.from({ length: 8 }, (_, i) => run(client, `sleep 0.1; echo par${i}; exit ${i}`)),
    );
    parallel.forEach((res, i) => expect(res).toMatchObject({ code: i, stdout: `par${i}\n` }));
    expect(server.stats.sessions).toBe(11);
    expect(server.stats.connections).toBe(1);
  });

  it('reports a missing home as a failed command instead of crashing', async () => {
    const server = await start({ home: path.join(tmp, 'does-not-exist') });
    const client = await connect(server);
    const res = await run(client, 'true');
    expect(res.code).toBe(127);
    expect(res.stderr).toMatch(/cannot run command/);
    expect((await run(client, 'true')).code).toBe(127); // server still fine
  });
});

describe('authentication', () => {
  it('refuses a key that is not authorized', async () => {
    const server = await start();
    await expect(connect(server, { privateKey: otherKey.privateKey })).rejects.toThrow(
      /authentication methods failed/,
    );
  });

  it('refuses a signature made with another key for an authorized public key', async () => {
    // Passes the query phase (the public key is authorized) but cannot sign:
    // proves the server verifies signatures rather than trusting the key.
    class ImpostorAgent extends BaseAgent<string> {
      getIdentities(cb: (err: Error | undefined, keys?: string[]) => void): void {
        cb(undefined, [clientKey.publicKey]);
      }
      sign(_pub: string, data: Buffer, ...rest: unknown[]): void {
        const cb = rest.at(-1) as (err: Error | undefined, sig?: Buffer) => void;
        const wrong = utils.parseKey(otherKey.privateKey) as ssh2.ParsedKey;
        cb(undefined, wrong.sign(data));
      }
    }
    const server = await start();
    await expect(
      connect(server, { privateKey: undefined, agent: new ImpostorAgent() }),
    ).rejects.toThrow(/authentication methods failed/);
  });

  it('refuses password auth', async () => {
    const server = await start();
    await expect(connect(server, { privateKey: undefined, password: 'hunter2' })).rejects.toThrow(
      /authentication methods failed/,
    );
  });

  it('refuses users outside `users`', async () => {
    const server = await start({ users: ['deploy'] });
    await connect(server);
    await expect(connect(server, { username: 'root' })).rejects.toThrow(/authentication methods failed/);
  });

  it('gives each user of `homes` their own home and refuses others', async () => {
    const homeA = path.join(tmp, 'a');
    const homeB = path.join(tmp, 'b');
    await fs.mkdir(homeA);
    await fs.mkdir(homeB);
    const server = await startEmbeddedSshServer({
      homes: { 'site-a': homeA, 'site-b': homeB },
      authorizedKeys: [clientKey.publicKey],
    });
    servers.push(server);
    const a = await connect(server, { username: 'site-a' });
    const b = await connect(server, { username: 'site-b' });
    expect((await run(a, 'pwd; echo $HOME $USER')).stdout).toBe(`${homeA}\n${homeA} site-a\n`);
    expect((await run(b, 'pwd; echo $HOME $USER')).stdout).toBe(`${homeB}\n${homeB} site-b\n`);
    const sftpB = await openSftp(b);
    await p((cb) => sftpB.writeFile('note.txt', 'from b', cb));
    expect(await fs.readFile(path.join(homeB, 'note.txt'), 'utf8')).toBe('from b');
    await expect(connect(server, { username: '__proto__' })).rejects.toThrow(/authentication methods failed/);
  });

  it('publishes host key, known_hosts line and fingerprint consistently', async () => {
    const hostKey = generateKeyPair();
    const server = await start({ hostKey: hostKey.privateKey });
    expect(server.hostPublicKey).toBe(hostKey.publicKey.split(' ').slice(0, 2).join(' '));
    expect(server.knownHostsLine).toBe(`[127.0.0.1]:${server.port} ${server.hostPublicKey}`);
    expect(server.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(publicKeyFingerprint(hostKey.publicKey)).toBe(server.hostKeyFingerprint);
    await connect(server); // hostVerifier in connect() checks the served key
  });
});

describe('sftp', () => {
  it('round-trips a 1 MiB binary file with fastPut/fastGet', async () => {
    const server = await start();
    const client = await connect(server);
    const sftp = await openSftp(client);
    const data = randomBytes(1024 * 1024);
    const local = path.join(tmp, 'blob.bin');
    const back = path.join(tmp, 'blob.back');
    await fs.writeFile(local, data);
    await p((cb) => sftp.fastPut(local, 'blob.bin', cb));
    expect((await fs.readFile(path.join(home, 'blob.bin'))).equals(data)).toBe(true);
    await p((cb) => sftp.fastGet(`${home}/blob.bin`, back, cb));
    expect((await fs.readFile(back)).equals(data)).toBe(true);
  });

  it('supports stat, mkdir, readdir, rename, chmod, unlink, rmdir, readFile/writeFile, realpath', async () => {
    const server = await start();
    const client = await connect(server);
    const sftp = await openSftp(client);

    await p((cb) => sftp.mkdir('releases', cb));
    await p((cb) => sftp.writeFile('releases/a.txt', 'alpha', cb));
    expect(await fs.readFile(path.join(home, 'releases/a.txt'), 'utf8')).toBe('alpha');
    expect((await p<Buffer>((cb) => sftp.readFile('releases/a.txt', cb))).toString()).toBe('alpha');

    const st = await p<ssh2.Stats>((cb) => sftp.stat('releases/a.txt', cb));
    expect(st.isFile()).toBe(true);
    expect(st.size).toBe(5);
    expect((await p<ssh2.Stats>((cb) => sftp.stat('releases', cb))).isDirectory()).toBe(true);

    await p((cb) => sftp.chmod('releases/a.txt', 0o640, cb));
    expect((await fs.stat(path.join(home, 'releases/a.txt'))).mode & 0o777).toBe(0o640);

    await p((cb) => sftp.writeFile('releases/b.txt', 'beta', cb));
    const list = await p<ssh2.FileEntry[]>((cb) => sftp.readdir('releases', cb));
    expect(list.map((e) => e.filename).sort()).toEqual(['a.txt', 'b.txt']);
    const a = list.find((e) => e.filename === 'a.txt');
    expect(a?.longname).toMatch(/^-rw-r----- +1 .* 5 .* a\.txt$/);

    // Plain SFTP rename never replaces an existing file (as with OpenSSH).
    await expect(p<unknown>((cb) => sftp.rename('releases/a.txt', 'releases/b.txt', cb))).rejects.toThrow();
    await p((cb) => sftp.rename('releases/a.txt', 'releases/c.txt', cb));
    expect(await fs.readFile(path.join(home, 'releases/c.txt'), 'utf8')).toBe('alpha');

    await p((cb) => sftp.symlink('c.txt', 'releases/current', cb));
    expect(await fs.readlink(path.join(home, 'releases/current'))).toBe('c.txt');
    expect(await p<string>((cb) => sftp.readlink('releases/current', cb))).toBe('c.txt');
    expect((await p<ssh2.Stats>((cb) => sftp.lstat('releases/current', cb))).isSymbolicLink()).toBe(true);

    await p((cb) => sftp.unlink('releases/current', cb));
    await p((cb) => sftp.unlink('releases/b.txt', cb));
    await p((cb) => sftp.unlink('releases/c.txt', cb));
    await p((cb) => sftp.rmdir('releases', cb));
    await expect(fs.stat(path.join(home, 'releases'))).rejects.toThrow();

    expect(await p<string>((cb) => sftp.realpath('.', cb))).toBe(home);
    expect(await p<string>((cb) => sftp.realpath('x/../y', cb))).toBe(path.join(home, 'y'));
  });

  it('maps errors to SFTP status codes', async () => {
    const { STATUS_CODE } = utils.sftp;
    const server = await start();
    const client = await connect(server);
    const sftp = await openSftp(client);
    await expect(p<unknown>((cb) => sftp.stat('missing.txt', cb))).rejects.toMatchObject({ code: STATUS_CODE.NO_SUCH_FILE });
    await expect(p<unknown>((cb) => sftp.readFile('missing.txt', cb))).rejects.toMatchObject({
      code: STATUS_CODE.NO_SUCH_FILE,
    });
    await expect(p<unknown>((cb) => sftp.readdir('missing', cb))).rejects.toMatchObject({ code: STATUS_CODE.NO_SUCH_FILE });
    await expect(p<unknown>((cb) => sftp.mkdir('.', cb))).rejects.toMatchObject({ code: STATUS_CODE.FAILURE });
    if (process.getuid?.() !== 0) {
      await fs.writeFile(path.join(home, 'locked'), 'x', { mode: 0o000 });
      await expect(p<unknown>((cb) => sftp.readFile('locked', cb))).rejects.toMatchObject({
        code: STATUS_CODE.PERMISSION_DENIED,
      });
    }
  });

  it('lists large directories across several READDIR replies', async () => {
    const server = await start();
    const client = await connect(server);
    const sftp = await openSftp(client);
    await fs.mkdir(path.join(home, 'many'));
    await Promise.all(Array.from({ length: 250 }, (_, i) => fs.writeFile(path.join(home, 'many', `f${i}`), '')));
    const list = await p<ssh2.FileEntry[]>((cb) => sftp.readdir('many', cb));
    expect(list.length).toBe(250);
  });

  it('closes the SFTP channel with exit-status 0 when the client ends it', async () => {
    const server = await start();
    const client = await connect(server);
    const sftp = await openSftp(client);
    let status: number | undefined;
    sftp.on('exit', (code: number) => (status = code)); // OpenSSH's scp insists on it
    const closed = new Promise<void>((resolve) => sftp.on('close', () => resolve()));
    sftp.end();
    await closed;
    expect(status).toBe(0);
    expect((await run(client, 'echo ok')).stdout).toBe('ok\n');
  });
});

describe('server lifecycle', () => {
  it('counts connections', async () => {
    const server = await start();
    await connect(server);
    await connect(server);
    expect(server.stats.connections).toBe(2);
  });

  it('listens on loopback only', async () => {
    const server = await start();
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
  });

  it('close() with a live connection and a running command resolves promptly and leaves nothing behind', async () => {
    const server = await start();
    const client = await connect(server);
    const clientClosed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    const stream = await openExec(client, 'echo $$; sleep 30');
    const pgid = Number(await firstLine(stream));
    const bg = await openExec(client, 'nohup sleep 30 >/dev/null 2>&1 & echo $!');
    const bgPid = Number(await firstLine(bg));
    const t0 = Date.now();
    await server.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    await clientClosed;
    expect(groupAlive(pgid)).toBe(false);
    expect(await waitGone(bgPid)).toBe(true); // background job outliving its shell
    await server.close(); // idempotent
    await expect(connect(server)).rejects.toThrow();
  });

  it('survives garbage from a client', async () => {
    const server = await start();
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const sock = net.connect(server.port, '127.0.0.1', () => sock.end('GET / HTTP/1.0\r\n\r\n'));
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
      sock.resume();
    });
    const client = await connect(server);
    expect((await run(client, 'echo alive')).stdout).toBe('alive\n');
  });
});
