import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { ConnectionError } from '../core/errors.ts';
import type { ExecOptions, ExecResult, Transport } from './transport.ts';

/** One way to authenticate, tried in order like OpenSSH does. */
export type AuthMethod =
  | { type: 'agent'; socket: string; label?: string }
  | { type: 'key'; privateKey: string | Buffer; passphrase?: string; label: string };

export interface SshTransportOptions {
  /** Site name, for error messages. */
  site: string;
  host: string;
  port: number;
  username: string;
  auth: AuthMethod[];
  /**
   * Decides whether the server's host key is acceptable: `true`, or the
   * message that explains the refusal. Required on purpose: ssh2 accepts any
   * key when this is missing.
   */
  hostVerifier: (key: Buffer) => true | string | Promise<true | string>;
  readyTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  forwardAgent?: boolean;
  /** Opens the byte stream to the server (ProxyJump); default a TCP socket. */
  openSocket?: () => Promise<Duplex>;
  /** Most channels opened at once: OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
}

/**
 * SSH via ssh2, one connection per site, opened on first use and reused for
 * every command and file transfer of the run.
 */
export class SshTransport implements Transport {
  readonly target: string;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private sftp: Promise<SFTPWrapper> | undefined;
  private closed = false;
  private lostReason: string | undefined;
  private readonly channels: Semaphore;
  /** What each authentication attempt came to, for the error when all fail. */
  readonly authLog: string[] = [];

  constructor(private readonly options: SshTransportOptions) {
    this.target = `${options.username}@${options.host}:${options.port}`;
    this.channels = new Semaphore(options.maxChannels ?? 8);
  }

  connect(): Promise<void> {
    return this.ensureClient().then(() => undefined);
  }

  private ensureClient(): Promise<Client> {
    if (this.closed) return Promise.reject(new ConnectionError(`connection to ${this.target} is closed`, this.options.site));
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  private async open(): Promise<Client> {
    const { host, port, site } = this.options;
    const sock = this.options.openSocket
      ? await this.options.openSocket()
      : await tcpSocket(host, port, this.options.readyTimeoutMs ?? 20_000);
    const client = new Client();
    const auth = [...this.options.auth];
    let hostKeyRefusal: string | undefined;
    const config: ConnectConfig = {
      sock,
      host,
      port,
      username: this.options.username,
      readyTimeout: this.options.readyTimeoutMs ?? 20_000,
      keepaliveInterval: this.options.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: this.options.keepaliveCountMax ?? 3,
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        Promise.resolve(this.options.hostVerifier(key)).then(
          (verdict) => {
            if (verdict !== true) hostKeyRefusal = verdict;
            verify(verdict === true);
          },
          (error: unknown) => {
            hostKeyRefusal = `host key check failed: ${error instanceof Error ? error.message : String(error)}`;
            verify(false);
          },
        );
      },
      authHandler: (_methodsLeft, _partial, next) => {
        const method = auth.shift();
        if (!method) return next(false as never);
        if (method.type === 'agent') {
          this.authLog.push(`agent (${method.label ?? method.socket})`);
          return next({ type: 'agent', username: this.options.username, agent: method.socket } as never);
        }
        this.authLog.push(method.label);
        return next({
          type: 'publickey',
          username: this.options.username,
          key: method.privateKey,
          passphrase: method.passphrase,
        } as never);
      },
    } as ConnectConfig;
    if (this.options.forwardAgent) {
      const agentMethod = this.options.auth.find((m) => m.type === 'agent');
      if (agentMethod?.type === 'agent') Object.assign(config, { agent: agentMethod.socket, agentForward: true });
    }

    return new Promise<Client>((resolve, reject) => {
      let ready = false;
      client.once('ready', () => {
        ready = true;
        this.client = client;
        resolve(client);
      });
      client.on('error', (error: Error & { level?: string }) => {
        if (!ready) {
          // A refused host key is never transient: retrying would only ask again.
          reject(hostKeyRefusal ? new ConnectionError(`site ${site}: ${hostKeyRefusal}`, site, false) : describeConnectError(error, this.target, site, this.authLog));
        } else {
          this.lostReason = error.message;
        }
      });
      client.on('close', () => {
        this.lostReason ??= 'the server closed the connection';
        this.client = undefined;
        if (!ready && hostKeyRefusal) reject(new ConnectionError(`site ${site}: ${hostKeyRefusal}`, site, false));
        if (!ready) reject(new ConnectionError(`could not connect to ${this.target}: connection closed during the handshake`, site, true));
      });
      client.connect(config);
    });
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const client = await this.ensureClient();
    const release = await this.channels.acquire();
    try {
      const stream = await new Promise<ClientChannel>((resolve, reject) => {
        client.exec(command, {}, (error, channel) => (error ? reject(error) : resolve(channel)));
      }).catch((error: Error) => {
        throw new ConnectionError(`could not start a command on ${this.target}: ${error.message}`, this.options.site, false, { cause: error });
      });
      return await this.pump(stream, command, options);
    } finally {
      release();
    }
  }

  private pump(stream: ClientChannel, command: string, options: ExecOptions): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      let exitCode: number | null = null;
      let signal: string | null = null;
      let exited = false;
      stream.setEncoding('utf8');
      stream.stderr.setEncoding('utf8');
      stream.on('data', (chunk: string) => options.onStdout?.(chunk));
      stream.stderr.on('data', (chunk: string) => options.onStderr?.(chunk));
      stream.on('exit', (code: number | null, signalName?: string) => {
        exited = true;
        exitCode = typeof code === 'number' ? code : null;
        signal = signalName ? String(signalName).replace(/^SIG/, '') : null;
      });
      const abort = (): void => {
        // OpenSSH honours "signal" requests since 7.9; closing the channel
        // is the fallback that at least stops us waiting.
        try {
          stream.signal('TERM');
        } catch {
          // channel already gone
        }
        setTimeout(() => stream.close(), 200).unref();
      };
      options.signal?.addEventListener('abort', abort, { once: true });
      if (options.signal?.aborted) abort();
      stream.on('close', () => {
        options.signal?.removeEventListener('abort', abort);
        if (exited || options.signal?.aborted) {
          resolve({ exitCode, signal });
        } else {
          const why = this.lostReason ?? 'the channel closed without an exit status';
          reject(new ConnectionError(`connection to ${this.target} lost during: ${command} (${why})`, this.options.site));
        }
      });
      stream.end(options.stdin ?? '');
    });
  }

  private getSftp(): Promise<SFTPWrapper> {
    this.sftp ??= this.ensureClient().then(
      (client) =>
        new Promise<SFTPWrapper>((resolve, reject) => {
          client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp)));
        }),
    );
    this.sftp.catch(() => (this.sftp = undefined));
    return this.sftp;
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    const sftp = await this.getSftp();
    await new Promise<void>((resolve, reject) => sftp.fastPut(localPath, remotePath, (e) => (e ? reject(transferError('put', localPath, remotePath, this.target, e)) : resolve())));
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    const sftp = await this.getSftp();
    await new Promise<void>((resolve, reject) => sftp.fastGet(remotePath, localPath, (e) => (e ? reject(transferError('get', remotePath, localPath, this.target, e)) : resolve())));
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      client.once('close', () => resolve());
      client.end();
      setTimeout(resolve, 2000).unref();
    });
  }
}

function transferError(verb: string, from: string, to: string, target: string, error: Error): Error {
  return new Error(`${verb} ${from} -> ${to} on ${target} failed: ${error.message}`, { cause: error });
}

function tcpSocket(host: string, port: number, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    // TCP_NODELAY: without it Nagle's algorithm adds tens of ms to every command.
    const socket = netConnect({ host, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ConnectionError(`could not connect to ${host}:${port}: timed out after ${timeoutMs}ms`, null, true));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const transient = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'EAI_AGAIN'].includes(error.code ?? '');
      reject(new ConnectionError(`could not connect to ${host}:${port}: ${error.message}`, null, transient, { cause: error }));
    });
  });
}

function describeConnectError(error: Error & { level?: string }, target: string, site: string, tried: string[]): ConnectionError {
  if (error.level === 'client-authentication') {
    const list = tried.length > 0 ? tried.join('; ') : 'no keys or agent available';
    return new ConnectionError(
      `authentication to ${target} failed; tried: ${list}. Add your public key to ~${target.split('@')[0]}/.ssh/authorized_keys on the server, or set identityFile for site ${site}.`,
      site,
      false,
      { cause: error },
    );
  }
  if (/host key|hostVerifier|Host denied/i.test(error.message)) {
    return new ConnectionError(`host key of ${target} was not accepted: ${error.message}`, site, false, { cause: error });
  }
  const transient = /ECONNRESET|ECONNREFUSED|handshake|Connection lost|socket hang up|closed/i.test(error.message);
  return new ConnectionError(`could not connect to ${target}: ${error.message}`, site, transient, { cause: error });
}

/** A counting semaphore: at most `size` holders at once, FIFO. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async acquire(): Promise<() => void> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.waiting.shift()?.();
    };
  }
}
