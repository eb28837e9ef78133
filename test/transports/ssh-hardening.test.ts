// The pure parts of issue 11's SSH hardening; their behaviour against real
// OpenSSH is in test/reliability/ssh-hardening.e2e.test.ts.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConnectionError, InterruptedError } from '../../src/core/errors.ts';
import { EventBus, type DeployEvent } from '../../src/core/events.ts';
import { Redactor } from '../../src/core/secret.ts';
import { compose, EMPTY_SCOPE } from '../../src/core/compose.ts';
import { sh } from '../../src/core/quote.ts';
import { showPath } from '../../src/core/show-path.ts';
import { finishSite } from '../../src/executor/guard.ts';
import { retryingConnect } from '../../src/connection/site-connection.ts';
import { GroupMarker, sftpPath, SshTransport } from '../../src/transports/ssh.ts';
import { FakeTransport } from '../helpers/fake-transport.ts';

const MARK = 'deployfile-pgid-0123456789ab ';

describe('GroupMarker: the process group line is taken out of stderr', () => {
  it('consumes the marker and shows everything else, in order', () => {
    const group = new GroupMarker(MARK);
    expect(group.push(`${MARK}4242\nfirst line\n`)).toBe('first line\n');
    expect(group.pgid).toBe(4242);
    expect(group.push(`${MARK}999\n`)).toBe(`${MARK}999\n`); // only the first one counts: the command cannot move the target
    expect(group.pgid).toBe(4242);
  });

  it('passes what a login script printed first, and finds the marker split across chunks', () => {
    const group = new GroupMarker(MARK);
    expect(group.push('debug1: from the rc file\r\n')).toBe('debug1: from the rc file\r\n');
    expect(group.push(MARK.slice(0, 10))).toBe('');
    expect(group.push(`${MARK.slice(10)}77`)).toBe('');
    expect(group.push('\nerr')).toBe('err');
    expect(group.pgid).toBe(77);
  });

  it('gives up holding output back when no marker comes (not a POSIX shell)', () => {
    const group = new GroupMarker(MARK);
    const partial = 'x'.repeat(70 * 1024);
    expect(group.push(partial)).toBe(partial);
    expect(group.pgid).toBeUndefined();
    expect(group.push('more')).toBe('more');
  });
});

describe('paths', () => {
  it('put/get expand ~ and ~/ as run and cd do (SFTP paths are relative to the login directory)', () => {
    expect(sftpPath('~/uploaded.txt')).toBe('uploaded.txt');
    expect(sftpPath('~')).toBe('.');
    expect(sftpPath('~/')).toBe('.');
    expect(sftpPath('/etc/hosts')).toBe('/etc/hosts');
    expect(sftpPath('static/app.css')).toBe('static/app.css');
    expect(sftpPath('~other/x')).toBe('~other/x');
  });

  it("cd into a directory named like an option (c.cd('-P'), c.cd('-')) goes there, not to $HOME or $OLDPWD", () => {
    expect(compose({ ...EMPTY_SCOPE, cwd: '-P' }, sh`pwd`).text).toBe('cd ./-P && pwd');
    expect(compose({ ...EMPTY_SCOPE, cwd: '-' }, sh`pwd`).text).toBe('cd ./- && pwd');
    expect(compose({ ...EMPTY_SCOPE, cwd: '~/Sites/-x' }, sh`pwd`).text).toBe('cd ~/Sites/-x && pwd');
  });

  it('a path with control characters is shown quoted and escaped, so it cannot forge a log line', () => {
    expect(showPath('~/Sites/alleged/static')).toBe('~/Sites/alleged/static');
    expect(showPath('x\n[web2] deployed')).toBe('"x\\n[web2] deployed"');
    expect(showPath('a\u001b[2Jb')).toBe('"a\\u001b[2Jb"');
    expect(showPath('a\u2028b')).toBe('"a\\u2028b"');
  });
});

const transportTo = (port: number): SshTransport =>
  new SshTransport({ site: 'typo', host: '127.0.0.1', port, username: 'nobody', auth: [], hostVerifier: () => true, readyTimeoutMs: 20_000 });

describe('connecting', () => {
  it('a refused port is not transient: not retried, and the message says why', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const retries: unknown[] = [];
    const error = await retryingConnect(transportTo(port), { onRetry: (info) => retries.push(info) })
      .connect()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).transient).toBe(false);
    expect((error as Error).message).toBe(`could not connect to 127.0.0.1:${port}: connection refused (nothing is listening on that port: check the port and that sshd runs); not retried`);
    expect(retries).toEqual([]);
  });

  it('aborting stops a handshake the server never answers, at once', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const controller = new AbortController();
      const pending = transportTo(port).connect(controller.signal).catch((e: unknown) => e);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const aborted = Date.now();
      controller.abort();
      const error = await pending;
      expect(Date.now() - aborted).toBeLessThan(200);
      expect(error).toBeInstanceOf(InterruptedError);
      expect((error as Error).message).toBe(`interrupted while connecting to nobody@127.0.0.1:${port}`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a transient failure retried to the end says how often and for how long', async () => {
    const inner = new FakeTransport('a@b:22', { connectError: new ConnectionError('could not connect to b:22: connection closed during the handshake', 'a', true) });
    const error = await retryingConnect(inner, { policy: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 } })
      .connect()
      .catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^could not connect to b:22: connection closed during the handshake \(gave up after 3 attempts in [\d.]+ s\)$/);
  });
});

describe('releasing the lock', () => {
  const finish = async (transport: FakeTransport & { usable?: boolean }, fresh: FakeTransport): Promise<DeployEvent[]> => {
    const bus = new EventBus('run-1');
    const events: DeployEvent[] = [];
    bus.on((event) => events.push(event));
    await finishSite({
      site: 'alleged',
      info: { operator: 'me@here', host: 'here', pid: 1, since: new Date().toISOString(), tasks: ['deploy'], runId: 'run-1' },
      transport,
      reconnect: () => fresh,
      error: undefined,
      outcome: 'failed',
      durationMs: 1,
      shared: new Map(),
      bus,
      redactor: new Redactor(),
    });
    return events;
  };
  // What a server prints for the end of a site: the record appended, then the lock released (connection/finish.ts).
  const releasing = {
    script: (command: string) => (command.includes('rm -rf') ? { stdout: `${command.includes('history.jsonl') ? 'deployfile-history-recorded\n' : ''}deployfile-lock-released\n` } : undefined),
  };

  it('reconnects when the first connection fails with any error, not only a ConnectionError ("Not connected")', async () => {
    const first = new FakeTransport('alleged@web1:22', { script: () => ({ error: new Error('Not connected') }) });
    const fresh = new FakeTransport('alleged@web1:22', releasing);
    const events = await finish(first, fresh);
    expect(fresh.commands.some((c) => c.includes('rm -rf'))).toBe(true);
    expect(events.filter((e) => e.type === 'log' && e.level === 'warn')).toEqual([]);
  });

  it('does not even try a connection the transport says is unusable (given up after a stalled command)', async () => {
    const first = Object.assign(new FakeTransport('alleged@web1:22', releasing), { usable: false });
    const fresh = new FakeTransport('alleged@web1:22', releasing);
    await finish(first, fresh);
    expect(first.commands).toEqual([]);
    expect(fresh.commands.filter((c) => c.includes('history.jsonl'))).toHaveLength(1);
    expect(fresh.commands.some((c) => c.includes('rm -rf'))).toBe(true);
  });
});
