import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
// ssh2 is CommonJS: Node's ESM loader only sees some of its named exports, so take them from the default.
import ssh2, { type ClientChannel, type ConnectConfig, type ParsedKey, type SFTPWrapper } from 'ssh2';

const { BaseAgent, Client, OpenSSHAgent, utils } = ssh2;
type Client = ssh2.Client;
import { ConnectionError } from '../core/errors.ts';
import type { ExecOptions, ExecResult, Transport } from './transport.ts';

/** After TERM, how long a timed-out or interrupted command has to exit before KILL. */
const KILL_AFTER_MS = 2000;
/** After KILL, how long before the channel is closed anyway. */
const CLOSE_AFTER_MS = 1000;

/** A private key ready for ssh2: the key text and its passphrase, if encrypted. */
export interface LoadedKey {
  /** Key text, or a key ssh2 already parsed (so an encrypted key's KDF runs once). */
  privateKey: string | Buffer | ParsedKey;
  passphrase?: string;
}

/** One way to authenticate, tried in order like OpenSSH does. */
export type AuthMethod =
  | {
      type: 'agent';
      socket: string;
      label?: string;
      /** IdentitiesOnly: offer only the agent's keys whose public blob is listed. */
      onlyKeys?: Buffer[];
    }
  | { type: 'key'; privateKey: string | Buffer; passphrase?: string; label: string }
  /**
   * A key read (and its passphrase asked for) only when its turn comes, so a
   * working agent means no passphrase prompt. `load` resolves to the key, or
   * to the reason it was skipped (`no such file`, `wrong passphrase`).
   */
  | { type: 'lazy-key'; label: string; load: () => Promise<LoadedKey | { skip: string }> };

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
   * key when this is missing. Time spent here (a question on the TTY) does
   * not count against the handshake timeout.
   */
  hostVerifier: (key: Buffer) => true | string | Promise<true | string>;
  /** Host key algorithms in order of preference (the types known_hosts has first); ssh2's defaults when omitted. */
  hostKeyAlgorithms?: string[];
  /** TCP connect plus SSH handshake and authentication (OpenSSH's ConnectTimeout); default 20 s. */
  readyTimeoutMs?: number;
  /** 0 turns keepalives off (OpenSSH's ServerAliveInterval 0). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  forwardAgent?: boolean;
  /** The agent socket to forward; defaults to the first agent in `auth`. */
  forwardAgentSocket?: string;
  /** Opens the byte stream to the server (ProxyJump); default a TCP socket. */
  openSocket?: () => Promise<Duplex>;
  /** Called after close(): closes the jump host connections behind openSocket. */
  onClose?: () => Promise<void>;
  /** Most channels opened at once: OpenSSH's MaxSessions defaults to 10. */
  maxChannels?: number;
  /** How errors name this connection, e.g. `jump host bastion for site alleged`; default `site <site>`. */
  description?: string;
}

const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];
const SUPPORTED_HOST_KEY_ALGORITHMS = [...HOST_KEY_ALGORITHMS, 'ssh-dss'];

/** The preferred algorithms first, then ssh2's defaults: what to offer the server. */
export function orderHostKeyAlgorithms(preferred: readonly string[]): string[] {
  const first = preferred.filter((a, i) => SUPPORTED_HOST_KEY_ALGORITHMS.includes(a) && preferred.indexOf(a) === i);
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

type SignDone = (err?: Error, signature?: Buffer) => void;
/** The two calls of ssh2's OpenSSHAgent we use, typed plainly. */
interface AgentLike {
  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void;
  sign(pubKey: ParsedKey, data: Buffer, options: unknown, cb?: SignDone): void;
}

/**
 * The operator's agent as ssh2 sees it, counting the keys it offers (for
 * "agent: 2 keys" when authentication fails) and, under IdentitiesOnly,
 * hiding the keys that are not configured.
 */
class RecordingAgent extends BaseAgent<ParsedKey> {
  keys: number | undefined;
  error: string | undefined;
  private readonly inner: AgentLike;

  constructor(
    readonly socket: string,
    private readonly onlyKeys: Buffer[] | undefined,
  ) {
    super();
    this.inner = new OpenSSHAgent(socket) as unknown as AgentLike;
  }

  getIdentities(cb: (err: Error | undefined, keys?: ParsedKey[]) => void): void {
    this.inner.getIdentities((err, keys) => {
      if (err || !keys) {
        this.error = err?.message ?? 'no answer';
        cb(err ?? new Error('no answer from the agent'));
        return;
      }
      const wanted = this.onlyKeys;
      const offered = wanted ? keys.filter((key) => wanted.some((blob) => blob.equals(key.getPublicSSH()))) : keys;
      this.keys = offered.length;
      cb(undefined, offered);
    });
  }

  sign(pubKey: ParsedKey, data: Buffer, options: unknown, cb?: SignDone): void {
    if (typeof options === 'function') this.inner.sign(pubKey, data, {}, options as SignDone);
    else this.inner.sign(pubKey, data, options ?? {}, cb);
  }

  /** What to say about the agent when authentication fails. */
  describe(label: string): string {
    if (this.error !== undefined) return `${label}: not usable (${this.error})`;
    if (this.keys === undefined) return `${label}: not asked`;
    if (this.keys === 0) return `${label}: no keys${this.onlyKeys ? ' matching IdentityFile (IdentitiesOnly)' : ''}`;
    return `${label}: ${this.keys} key${this.keys === 1 ? '' : 's'}, rejected`;
  }
}

/**
 * Runs `fn` while an overall deadline is paused: the handshake timeout
 * measures the network and the server, never a human answering a question.
 */
class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private remaining: number;
  private started = 0;
  private paused = 0;
  private done = false;

  constructor(
    ms: number,
    private readonly onExpire: () => void,
  ) {
    this.remaining = ms;
    this.resume();
  }

  private resume(): void {
    if (this.done || this.remaining <= 0) return;
    this.started = Date.now();
    this.timer = setTimeout(() => {
      this.done = true;
      this.onExpire();
    }, this.remaining);
    this.timer.unref?.();
  }

  async pauseWhile<T>(fn: () => Promise<T>): Promise<T> {
    if (this.paused++ === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.remaining -= Date.now() - this.started;
    }
    try {
      return await fn();
    } finally {
      if (--this.paused === 0) this.resume();
    }
  }

  cancel(): void {
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
  }
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
  /** A refusal that no retry can change (host key, authentication): every later use fails the same way. */
  private fatal: ConnectionError | undefined;
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
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new ConnectionError(`connection to ${this.target} is closed`, this.options.site));
    this.connecting ??= this.open().catch((error: unknown) => {
      this.connecting = undefined;
      if (error instanceof ConnectionError && !error.transient) this.fatal = error;
      throw error;
    });
    return this.connecting;
  }

  private get who(): string {
    return this.options.description ?? `site ${this.options.site}`;
  }

  private async open(): Promise<Client> {
    const { host, port, site } = this.options;
    const timeoutMs = this.options.readyTimeoutMs ?? 20_000;
    const sock = this.options.openSocket ? await this.options.openSocket() : await tcpSocket(host, port, timeoutMs);
    const client = new Client();
    const auth = [...this.options.auth];
    const username = this.options.username;
    let hostKeyRefusal: string | undefined;
    let timedOut = false;
    const deadline = new Deadline(timeoutMs, () => {
      timedOut = true;
      client.end();
      sock.destroy();
    });
    // The attempt under way, described once the server turns it down.
    let current: (() => string) | undefined;
    const finishCurrent = (): void => {
      if (current) this.authLog.push(current());
      current = undefined;
    };

    const chooseNext = async (methodsLeft: string[] | null): Promise<Record<string, unknown> | false> => {
      finishCurrent();
      if (methodsLeft && !methodsLeft.includes('publickey')) {
        this.authLog.push(`server accepts only: ${methodsLeft.join(', ') || 'nothing'} (deployfile uses keys)`);
        return false;
      }
      for (;;) {
        const method = auth.shift();
        if (!method) return false;
        if (method.type === 'agent') {
          const agent = new RecordingAgent(method.socket, method.onlyKeys);
          const label = method.label ?? 'agent';
          current = () => agent.describe(label);
          return { type: 'agent', username, agent };
        }
        let key: LoadedKey | { skip: string };
        if (method.type === 'lazy-key') {
          try {
            key = await deadline.pauseWhile(method.load);
          } catch (error) {
            key = { skip: error instanceof Error ? error.message : String(error) };
          }
        } else {
          key = { privateKey: method.privateKey, passphrase: method.passphrase };
        }
        if ('skip' in key) {
          this.authLog.push(`${method.label}: ${key.skip}`);
          continue;
        }
        const parsed = utils.parseKey(key.privateKey, key.passphrase);
        if (parsed instanceof Error || !parsed.isPrivateKey()) {
          this.authLog.push(`${method.label}: unusable (${parsed instanceof Error ? parsed.message : 'not a private key'})`);
          continue;
        }
        const label = method.label;
        current = () => `${label}: rejected`;
        return { type: 'publickey', username, key: parsed };
      }
    };

    const algorithms = this.options.hostKeyAlgorithms ? { serverHostKey: orderHostKeyAlgorithms(this.options.hostKeyAlgorithms) } : undefined;
    const keepalive = this.options.keepaliveIntervalMs ?? 15_000;
    const config: ConnectConfig = {
      sock,
      host,
      port,
      username,
      // Our own Deadline replaces ssh2's, which would also count a human answering a host key question.
      readyTimeout: 0,
      keepaliveInterval: keepalive,
      keepaliveCountMax: this.options.keepaliveCountMax ?? 3,
      ...(algorithms ? { algorithms } : {}),
      hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
        deadline
          .pauseWhile(async () => this.options.hostVerifier(key))
          .then(
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
      authHandler: (methodsLeft: string[] | null, _partial: boolean | null, next: (method: unknown) => void) => {
        chooseNext(methodsLeft).then(next, () => next(false));
      },
    } as unknown as ConnectConfig;
    if (this.options.forwardAgent) {
      const firstAgent = this.options.auth.find((m) => m.type === 'agent');
      const socket = this.options.forwardAgentSocket ?? (firstAgent?.type === 'agent' ? firstAgent.socket : undefined);
      if (socket) Object.assign(config, { agent: socket, agentForward: true });
    }

    return new Promise<Client>((resolve, reject) => {
      let ready = false;
      let settled = false;
      const fail = (error: ConnectionError): void => {
        if (settled) return;
        settled = true;
        deadline.cancel();
        reject(error);
      };
      client.once('ready', () => {
        ready = true;
        settled = true;
        deadline.cancel();
        this.client = client;
        resolve(client);
      });
      client.on('error', (error: Error & { level?: string }) => {
        // The agent could not be reached: recorded by RecordingAgent, and ssh2 goes on to the next method.
        if (error.level === 'agent') return;
        if (!ready) {
          if (hostKeyRefusal) fail(new ConnectionError(`${this.who}: ${hostKeyRefusal}`, site, false));
          else if (timedOut) fail(new ConnectionError(`could not connect to ${this.target}: no answer within ${timeoutMs / 1000}s (ConnectTimeout)`, site, true));
          else {
            finishCurrent();
            fail(describeConnectError(error, this.target, site, this.authLog));
          }
        } else {
          this.lostReason = error.message;
        }
      });
      client.on('close', () => {
        this.lostReason ??= 'the server closed the connection';
        this.client = undefined;
        if (ready) return;
        if (hostKeyRefusal) fail(new ConnectionError(`${this.who}: ${hostKeyRefusal}`, site, false));
        else if (timedOut) fail(new ConnectionError(`could not connect to ${this.target}: no answer within ${timeoutMs / 1000}s (ConnectTimeout)`, site, true));
        else fail(new ConnectionError(`could not connect to ${this.target}: connection closed during the handshake`, site, true));
      });
      client.connect(config);
    });
  }

  /**
   * A byte stream to `host:port` as seen from this server (`direct-tcpip`,
   * what `ssh -W` and ProxyJump use): the next hop's socket.
   */
  async forwardOut(host: string, port: number): Promise<Duplex> {
    const client = await this.ensureClient();
    return new Promise<Duplex>((resolve, reject) => {
      client.forwardOut('127.0.0.1', 0, host, port, (error, channel) => {
        if (error) {
          reject(new ConnectionError(`${this.target} could not open a connection to ${host}:${port} (ProxyJump): ${error.message}`, this.options.site, false, { cause: error }));
        } else {
          resolve(channel);
        }
      });
    });
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const client = await this.ensureClient();
    const release = await this.channels.acquire();
    try {
      return await new Promise<ExecResult>((resolve, reject) => {
        client.exec(command, {}, (error, channel) => {
          if (error) {
            // A connection cut while the exec request was in flight fails the request
            // too, though the server may have started the command: that is a lost
            // connection, not a refusal. The close event can trail the error a little.
            setTimeout(() => {
              const gone = this.client !== client || this.lostReason !== undefined;
              reject(
                gone
                  ? new ConnectionError(`connection to ${this.target} lost during: ${command} (${this.lostReason ?? error.message})`, this.options.site, false, { cause: error })
                  : new ConnectionError(`could not start a command on ${this.target}: ${error.message}`, this.options.site, false, { cause: error }),
              );
            }, 100);
            return;
          }
          // Listen before returning to the event loop: a fast command's output, exit
          // status and close can arrive in the same packet batch as the exec reply,
          // and an 'exit' emitted before anyone listens is lost.
          this.pump(channel, command, options).then(resolve, reject);
        });
      });
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
      const send = (name: string): void => {
        try {
          signalChannel(stream, name);
        } catch {
          // channel already gone
        }
      };
      const abort = (): void => {
        // Timeout or Ctrl-C: end the command on the server, not just our wait
        // for it. OpenSSH (7.9+) delivers "signal" requests to the command's
        // process group (killpg; checked against sshd 9.2 in
        // test/reliability): TERM, then KILL if it is still running, then
        // close the channel so we stop waiting even on servers that ignore
        // signal requests.
        send('TERM');
        const kill = setTimeout(() => exited || send('KILL'), KILL_AFTER_MS);
        const close = setTimeout(() => stream.close(), KILL_AFTER_MS + CLOSE_AFTER_MS);
        kill.unref();
        close.unref();
        stream.once('close', () => {
          clearTimeout(kill);
          clearTimeout(close);
        });
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
    if (client) {
      await new Promise<void>((resolve) => {
        client.once('close', () => resolve());
        client.end();
        setTimeout(resolve, 2000).unref();
      });
    }
    await this.options.onClose?.();
  }
}

/**
 * Send a `signal` channel request (RFC 4254 §6.9). ssh2's own
 * `ClientChannel.signal()` sends nothing once our side has sent EOF, and we
 * always send EOF right after stdin, so it never reached the server: a
 * timed-out command went on running there after its channel closed. The
 * protocol allows the request on any open channel, EOF or not, and sshd
 * delivers it (killpg of the command's process group), so it is sent through
 * ssh2's protocol object directly.
 */
function signalChannel(stream: ClientChannel, name: string): void {
  const channel = stream as unknown as {
    outgoing?: { id: number; state: string };
    _client?: { _protocol?: { signal?: (id: number, signal: string) => void } };
  };
  const protocol = channel._client?._protocol;
  const outgoing = channel.outgoing;
  if (outgoing && (outgoing.state === 'open' || outgoing.state === 'eof') && typeof protocol?.signal === 'function') {
    protocol.signal(outgoing.id, name);
  } else {
    // Another ssh2 version: its public method, which does what it can.
    stream.signal(name);
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
