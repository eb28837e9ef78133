import { randomBytes } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
// ssh2 is CommonJS: Node's ESM loader only sees some of its named exports, so take them from the default.
import ssh2, { type ClientChannel, type ConnectConfig, type ParsedKey, type SFTPWrapper } from 'ssh2';

const { BaseAgent, Client, OpenSSHAgent, utils } = ssh2;
type Client = ssh2.Client;
import { ConnectionError, InterruptedError } from '../core/errors.ts';
import { showPath } from '../core/show-path.ts';
import { sshTarget } from '../core/target.ts';
import { fitsShellLine, NOT_STARTED, SharedShell, ShellChannelError, type ShellChannel } from './shared-shell.ts';
import type { ExecOptions, ExecResult, Transport } from './transport.ts';

/** After TERM, how long a timed-out or interrupted command has to exit before KILL. */
export const KILL_AFTER_MS = 2000;
/**
 * How long the server has to accept a `signal` request before the command's
 * process group is ended through a second channel instead (a root login on
 * OpenSSH refuses signals; some servers never answer).
 */
export const SIGNAL_ANSWER_MS = 500;
/**
 * After KILL, how long the server has to answer anything. A server that has
 * said nothing since TERM (a stopped sshd, a silent network path) is not
 * waited for: the connection is given up, so a timeout or Ctrl-C returns
 * within KILL_AFTER_MS + GIVE_UP_AFTER_MS whatever the server does.
 */
export const GIVE_UP_AFTER_MS = 1000;
/**
 * How much longer a command is waited for when the server answers but its
 * kill is slow to start (a second login shell that takes seconds to source
 * its rc files): then the channel is closed and, failing that, given up.
 */
export const SLOW_KILL_LIMIT_MS = 8000;

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
  /**
   * Run commands that need no stdin in one long-lived shell instead of a
   * session each (shared-shell.ts); default true. False: a session per command.
   */
  sharedShell?: boolean;
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
  /** Runs the commands that need no stdin, one at a time, without a session each (shared-shell.ts). */
  private shell: SharedShell | undefined;
  private shellClient: Client | undefined;
  /** Set when a shared shell could not start a command here: every command then gets its own session. */
  private shellRefused = false;
  /** What each authentication attempt came to, for the error when all fail. */
  readonly authLog: string[] = [];

  constructor(private readonly options: SshTransportOptions) {
    this.target = sshTarget(options.username, options.host, options.port);
    this.channels = new Semaphore(options.maxChannels ?? 8);
  }

  /** Connects, unless already connected. Aborting `signal` (Ctrl-C) ends a handshake under way at once. */
  connect(signal?: AbortSignal): Promise<void> {
    return this.ensureClient(signal).then(() => undefined);
  }

  /**
   * False once the connection was lost or given up: every later use fails
   * with a ConnectionError (nothing is re-run on its own), and whoever must
   * still reach the server (the lock release) opens a new one.
   */
  get usable(): boolean {
    return !this.closed && !this.fatal && this.lostReason === undefined;
  }

  private ensureClient(signal?: AbortSignal): Promise<Client> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closed) return Promise.reject(new ConnectionError(`connection to ${this.target} is closed`, this.options.site));
    if (this.lostReason !== undefined && this.connecting) {
      return Promise.reject(new ConnectionError(`connection to ${this.target} was lost earlier (${this.lostReason}); nothing more runs over it`, this.options.site));
    }
    this.connecting ??= this.open(signal).catch((error: unknown) => {
      this.connecting = undefined;
      if (error instanceof ConnectionError && !error.transient) this.fatal = error;
      throw error;
    });
    return this.connecting;
  }

  /**
   * Stop using the connection: the server stopped answering (a channel not
   * closed after KILL). Destroying the socket ends the wait for replies that
   * will never come; a new connection is a new sshd session.
   */
  private abandon(client: Client, reason: string): void {
    this.lostReason ??= reason;
    if (this.client === client) this.client = undefined;
    this.sftp = undefined;
    try {
      client.destroy();
    } catch {
      // already gone
    }
  }

  private get who(): string {
    return this.options.description ?? `site ${this.options.site}`;
  }

  private async open(signal?: AbortSignal): Promise<Client> {
    const { host, port, site } = this.options;
    const timeoutMs = this.options.readyTimeoutMs ?? 20_000;
    const interrupted = (): InterruptedError => new InterruptedError(`interrupted while connecting to ${this.target}`);
    if (signal?.aborted) throw interrupted();
    const sock = await abortable(this.options.openSocket ? this.options.openSocket() : tcpSocket(host, port, timeoutMs), signal, interrupted, (late) => late.destroy());
    if (signal?.aborted) {
      sock.destroy();
      throw interrupted();
    }
    // Interruptions and disconnects before the first one are not a lost connection.
    this.lostReason = undefined;
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
      const onAbort = (): void => {
        // Ctrl-C during the handshake: stop now, not at ConnectTimeout.
        fail(interrupted());
        client.end();
        sock.destroy();
      };
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        deadline.cancel();
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      client.once('ready', () => {
        // Authenticated, but sshd's listener still counts this connection
        // against MaxStartups until its monitor says so, and that happens
        // just before the post-auth process starts. One reply from that
        // process (a harmless global request, always refused) proves the
        // listener was told: only then is the handshake slot given back.
        // Without it, eight slots let more than ten through on a busy host.
        try {
          client.unforwardIn('127.0.0.1', 0, () => settle());
        } catch {
          settle(); // the socket closed meanwhile: 'close' reports it
        }
      });
      const settle = (): void => {
        if (settled) return;
        if (this.closed) {
          // close() came during the handshake: this client must not outlive it.
          client.end();
          fail(new ConnectionError(`connection to ${this.target} is closed`, site));
          return;
        }
        ready = true;
        settled = true;
        deadline.cancel();
        signal?.removeEventListener('abort', onAbort);
        this.client = client;
        resolve(client);
      };
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
        if (ready) this.lostReason ??= 'the server closed the connection';
        if (this.client === client) this.client = undefined;
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
    refuseNul('command', command);
    const client = await this.ensureClient();
    // A command runs in the connection's shared shell when it is free and its stdin fits in a shell line.
    if (fitsShellLine(options.stdin)) {
      const shell = this.idleShell(client);
      if (shell) {
        const result = await shell.run(command, options);
        if (result !== NOT_STARTED) return result;
        // A shell that ended before its first command began will not work on this server (a restricted shell): sessions only.
        if (!shell.alive && !shell.worked) this.shellRefused = true;
      }
    }
    const release = await this.channels.acquire();
    try {
      const { marker, wrapped } = withGroupMarker(command);
      return await new Promise<ExecResult>((resolve, reject) => {
        const onOpen = (error: Error | undefined, channel: ClientChannel): void => {
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
          this.pump(client, channel, command, marker, options).then(resolve, reject);
        };
        try {
          client.exec(wrapped, {}, onOpen);
        } catch (error) {
          // ssh2 throws "Not connected" when the socket is already gone.
          this.lostReason ??= error instanceof Error ? error.message : String(error);
          reject(new ConnectionError(`connection to ${this.target} lost during: ${command} (${this.lostReason})`, this.options.site, false, { cause: error }));
        }
      });
    } finally {
      release();
    }
  }

  /**
   * The connection's shared shell if it is free, a new one if there is none
   * (or the last one ended), or nothing: busy, turned off, refused by this
   * server, or no channel free (it keeps one of the MaxSessions for itself).
   */
  private idleShell(client: Client): SharedShell | undefined {
    if (this.options.sharedShell === false || this.shellRefused) return undefined;
    if (this.shell?.alive && this.shellClient === client) return this.shell.idle ? this.shell : undefined;
    const release = this.channels.tryAcquire();
    if (!release) return undefined;
    this.shellClient = client;
    this.shell = new SharedShell(
      (onStdout, onStderr) => this.openShellChannel(client, onStdout, onStderr, release),
      (command) => new ConnectionError(`connection to ${this.target} lost during: ${command} (${this.lostReason ?? 'the channel closed without an exit status'})`, this.options.site),
    );
    return this.shell;
  }

  /** The shared shell's channel: `/bin/sh` reading lines, pumped like a command that never ends until stopped. */
  private openShellChannel(client: Client, onStdout: (chunk: string) => void, onStderr: (chunk: string) => void, release: () => void): ShellChannel {
    const { marker, wrapped } = withGroupMarker('exec /bin/sh -s');
    const stopper = new AbortController();
    let stream: ClientChannel | undefined;
    let pending = '';
    const ended = new Promise<ExecResult>((resolve, reject) => {
      const onOpen = (error: Error | undefined, channel: ClientChannel): void => {
        if (error) {
          // As for a command: a refusal, unless the connection went with it.
          setTimeout(() => reject(new ShellChannelError(error.message, this.client === client && this.lostReason === undefined)), 100);
          return;
        }
        this.pump(client, channel, 'the shared shell', marker, { onStdout, onStderr, signal: stopper.signal }, (open) => {
          stream = open;
          if (pending !== '') open.write(pending);
          pending = '';
        }).then(resolve, reject);
      };
      try {
        client.exec(wrapped, {}, onOpen);
      } catch (error) {
        this.lostReason ??= error instanceof Error ? error.message : String(error);
        reject(new ShellChannelError(this.lostReason, false));
      }
    });
    ended.then(release, release);
    return {
      write: (text) => {
        if (!stream) pending += text;
        // A channel already closing takes nothing; its end tells the shell the command never started.
        else if (stream.writable) stream.write(text);
      },
      stop: () => stopper.abort(),
      end: () => {
        if (stream?.writable) stream.end();
      },
      ended,
    };
  }

  /**
   * Passes a channel's output on and settles with its end, ending the command
   * on abort. `hold` keeps stdin open and gets the channel to write to (the
   * shared shell); otherwise `options.stdin` is written and stdin closed.
   */
  private pump(client: Client, stream: ClientChannel, command: string, marker: string, options: ExecOptions, hold?: (stream: ClientChannel) => void): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      let exitCode: number | null = null;
      let signal: string | null = null;
      let exited = false;
      let settled = false;
      let heard = false;
      const timers: NodeJS.Timeout[] = [];
      const group = new GroupMarker(marker);
      stream.setEncoding('utf8');
      stream.stderr.setEncoding('utf8');
      stream.on('data', (chunk: string) => options.onStdout?.(chunk));
      // A kill wanted before the command's shell said its group (a login shell still reading its rc files) starts once it does.
      let pendingKill: 'TERM' | 'KILL' | undefined;
      stream.stderr.on('data', (chunk: string) => {
        const known = group.pgid !== undefined;
        const text = group.push(chunk);
        if (!known && group.pgid !== undefined && pendingKill) killGroup(pendingKill);
        if (text !== '') options.onStderr?.(text);
      });
      stream.on('exit', (code: number | null, signalName?: string) => {
        exited = true;
        heard = true;
        exitCode = typeof code === 'number' ? code : null;
        signal = signalName ? String(signalName).replace(/^SIG/, '') : null;
      });
      const finish = (): void => {
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        options.signal?.removeEventListener('abort', abort);
        const rest = group.flush();
        if (rest !== '') options.onStderr?.(rest);
      };
      // Whether the server has answered anything since the command was told to
      // stop: a server that answers is slow at worst (a login shell that takes
      // seconds to start the kill), one that does not is stalled.
      let groupKill: 'TERM' | 'KILL' | undefined;
      /** The fallback: end the command's process group from a second channel. */
      const killGroup = (name: 'TERM' | 'KILL'): void => {
        if (exited || settled || groupKill !== undefined) return;
        if (group.pgid === undefined) {
          if (pendingKill !== 'KILL') pendingKill = name;
          return;
        }
        groupKill = name;
        killProcessGroup(client, group.pgid, name, KILL_AFTER_MS, () => (heard = true));
      };
      const after = (ms: number, fn: () => void): void => {
        const timer = setTimeout(fn, ms);
        timer.unref();
        timers.push(timer);
      };
      const close = (): void => {
        try {
          stream.close();
        } catch {
          // already gone
        }
      };
      const giveUp = (why: string): void => {
        if (settled) return;
        finish();
        this.abandon(client, why);
        resolve({ exitCode, signal, unconfirmed: `${this.target} ${why}; the connection was closed, and the command may still be running on the server` });
      };
      let aborting = false;
      const abort = (): void => {
        if (aborting || settled) return;
        aborting = true;
        // Timeout or Ctrl-C: end the command on the server, not just our wait
        // for it. First a "signal" request: OpenSSH (7.9+) delivers it to the
        // command's process group (killpg). It is sent wanting an answer: a
        // server that refuses it (OpenSSH for a root login: "session
        // signalling requires privilege separation"), does not know it, or
        // does not answer in time gets a second channel running
        // `kill -TERM -<pgid>`, then `kill -KILL -<pgid>` after the grace
        // period, on the server itself (it finishes even if we are gone).
        let accepted = false;
        requestSignal(stream, 'TERM', (ok) => {
          heard = true;
          accepted = ok;
          if (!ok) killGroup('TERM');
        });
        after(SIGNAL_ANSWER_MS, () => accepted || killGroup('TERM'));
        after(KILL_AFTER_MS, () => {
          if (exited) return;
          requestSignal(stream, 'KILL');
          // Accepted TERM but still running: KILL both ways (a group already being killed gets it from its script).
          killGroup('KILL');
        });
        after(KILL_AFTER_MS + GIVE_UP_AFTER_MS, () => {
          if (settled) return;
          const seconds = (KILL_AFTER_MS + GIVE_UP_AFTER_MS) / 1000;
          // Nothing heard since TERM: a stopped sshd or a silent path. Don't wait for a close that never comes.
          if (!heard) giveUp(`did not answer ${seconds} s after the command was told to stop (TERM, then KILL)`);
          // Heard, and no kill of ours under way: stop waiting, as for a server that ignores signals.
          else if (groupKill === undefined) close();
        });
        // A kill under way on a server whose login shell is slow: waited for, but not forever.
        after(KILL_AFTER_MS + SLOW_KILL_LIMIT_MS, close);
        after(KILL_AFTER_MS + SLOW_KILL_LIMIT_MS + GIVE_UP_AFTER_MS, () =>
          giveUp(`did not close the command's channel ${(KILL_AFTER_MS + SLOW_KILL_LIMIT_MS + GIVE_UP_AFTER_MS) / 1000} s after it was told to stop`),
        );
      };
      options.signal?.addEventListener('abort', abort, { once: true });
      if (options.signal?.aborted) abort();
      stream.on('close', () => {
        if (settled) return;
        finish();
        if (exited || options.signal?.aborted) {
          resolve({ exitCode, signal });
        } else {
          const why = this.lostReason ?? 'the channel closed without an exit status';
          reject(new ConnectionError(`connection to ${this.target} lost during: ${command} (${why})`, this.options.site));
        }
      });
      if (hold) hold(stream);
      else stream.end(options.stdin ?? '');
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
    refuseNul('remote path', remotePath);
    refuseNul('local path', localPath);
    const sftp = await this.getSftp();
    await new Promise<void>((resolve, reject) => sftp.fastPut(localPath, sftpPath(remotePath), (e) => (e ? reject(transferError('put', localPath, remotePath, this.target, e)) : resolve())));
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    refuseNul('remote path', remotePath);
    refuseNul('local path', localPath);
    const sftp = await this.getSftp();
    await new Promise<void>((resolve, reject) => sftp.fastGet(sftpPath(remotePath), localPath, (e) => (e ? reject(transferError('get', remotePath, localPath, this.target, e)) : resolve())));
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client;
    if (client) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          // A server that does not answer the disconnect: the socket must not keep the process alive.
          client.destroy();
          resolve();
        }, 2000);
        timer.unref();
        client.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        client.end();
      });
    }
    await this.options.onClose?.();
  }
}

/**
 * The command as a session runs it: its shell says its pid first. sshd
 * starts every session's command as a session (so process group) leader,
 * and that group is what a timeout or Ctrl-C must end when the server will
 * not deliver signals.
 */
function withGroupMarker(command: string): { marker: string; wrapped: string } {
  const marker = `deployfile-pgid-${randomBytes(6).toString('hex')} `;
  return { marker, wrapped: `printf '%s%s\\n' '${marker}' "$$" >&2\n${command}` };
}

/**
 * A NUL byte cannot reach the server intact: SSH strings carry it, but sshd
 * and every shell end a C string there, so the command would be cut short
 * (OpenSSH drops the connection instead). Refused before anything is sent.
 */
function refuseNul(what: string, text: string): void {
  const at = text.indexOf('\0');
  if (at < 0) return;
  // The text itself is not shown: it may hold a secret, and the runner names the command.
  throw new TypeError(`refusing to send a ${what} containing a NUL byte (character ${at + 1}): neither SSH nor a shell can pass one; nothing was sent`);
}

/**
 * `~` and `~/...` as `c.run` and `c.cd` understand them. SFTP has no `~`,
 * but relative paths are relative to the login directory, so `~/x` is `x`.
 */
export function sftpPath(remotePath: string): string {
  if (remotePath === '~' || remotePath === '~/') return '.';
  if (remotePath.startsWith('~/')) return remotePath.slice(2).replace(/^\/+/, '') || '.';
  return remotePath;
}

/**
 * Takes the process group line (`<marker><pgid>`) out of a command's
 * stderr: the first line that is it, after whatever a login script printed
 * first. Lines before it pass through once complete.
 */
export class GroupMarker {
  pgid: number | undefined;
  private held = '';
  private seeking = true;

  constructor(private readonly marker: string) {}

  push(chunk: string): string {
    if (!this.seeking) return chunk;
    this.held += chunk;
    let out = '';
    for (let nl = this.held.indexOf('\n'); nl >= 0; nl = this.held.indexOf('\n')) {
      const line = this.held.slice(0, nl);
      this.held = this.held.slice(nl + 1);
      if (line.startsWith(this.marker)) {
        const pgid = Number(line.slice(this.marker.length));
        if (Number.isSafeInteger(pgid) && pgid > 1) this.pgid = pgid;
        return out + this.flush();
      }
      out += `${line}\n`;
    }
    // A shell that never prints it (not a POSIX shell): stop holding output back.
    if (this.held.length > 64 * 1024) out += this.flush();
    return out;
  }

  flush(): string {
    const rest = this.held;
    this.held = '';
    this.seeking = false;
    return rest;
  }
}

/**
 * Ends a process group from a channel of its own, where the server does not
 * deliver `signal` requests: `kill -TERM -<pgid>`, then KILL once `graceMs`
 * has passed with the group still there (or KILL at once). The script runs
 * on the server to its end even if this connection goes away. Not awaited
 * and not counted against the channel limit (MaxSessions leaves room); a
 * stalled server never answers it and the caller's timers decide. `heard`
 * is told when the server answers the request. The `kill <pid>` fallback
 * covers a shell that does not lead its own group (sshd always makes it).
 */
function killProcessGroup(client: Client, pgid: number, name: 'TERM' | 'KILL', graceMs: number, heard: () => void): void {
  const steps = Math.max(1, Math.round(graceMs / 100));
  const script =
    name === 'KILL'
      ? `kill -KILL -${pgid} 2>/dev/null || kill -KILL ${pgid} 2>/dev/null; exit 0`
      : `kill -TERM -${pgid} 2>/dev/null || kill -TERM ${pgid} 2>/dev/null; n=0; ` +
        `while kill -0 -${pgid} 2>/dev/null && [ $n -lt ${steps} ]; do sleep 0.1 2>/dev/null || sleep 1; n=$((n+1)); done; ` +
        `kill -KILL -${pgid} 2>/dev/null; exit 0`;
  try {
    client.exec(script, {}, (error, channel) => {
      heard();
      if (error) return;
      channel.on('data', () => undefined);
      channel.stderr.on('data', () => undefined);
      channel.on('error', () => undefined);
      channel.end();
    });
  } catch {
    // not connected any more
  }
}

/** Rejects with `interrupted()` when `signal` aborts first; a late result is handed to `discard`. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, interrupted: () => Error, discard: (late: T) => void): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const onAbort = (): void => {
      if (done) return;
      done = true;
      reject(interrupted());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (done) discard(value);
        else {
          done = true;
          resolve(value);
        }
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!done) {
          done = true;
          reject(error);
        }
      },
    );
  });
}

/** What requestSignal needs of ssh2's internals, typed plainly. */
interface ChannelInternals {
  outgoing?: { id: number; state: string };
  _callbacks?: ((failed: boolean) => void)[];
  _client?: {
    _protocol?: {
      signal?: (id: number, signal: string) => void;
      _packetRW?: { write?: { allocStart?: number; finalize?: (packet: Buffer, ...rest: unknown[]) => unknown } };
    };
  };
}

/**
 * Send a `signal` channel request (RFC 4254 §6.9); `onAnswer` hears whether
 * the server accepted it. ssh2's own `ClientChannel.signal()` sends nothing
 * once our side has sent EOF, and we always send EOF right after stdin, so
 * it never reached the server: a timed-out command went on running there
 * after its channel closed. The protocol allows the request on any open
 * channel, EOF or not, so it is sent through ssh2's protocol object.
 *
 * ssh2 always sends it with want-reply off, and then a refusal is silent
 * (sshd only logs "session signalling requires privilege separation"). To
 * hear it, the want-reply byte of that one packet is set before ssh2
 * finalizes it, and the answer is taken from the channel's reply queue, the
 * one ssh2's own requests use (nothing else is waiting on it once the
 * command runs). Where ssh2's internals differ, the request goes without an
 * answer and the caller's timer decides.
 */
export function requestSignal(stream: ClientChannel, name: 'TERM' | 'KILL', onAnswer?: (accepted: boolean) => void): void {
  const channel = stream as unknown as ChannelInternals;
  const protocol = channel._client?._protocol;
  const outgoing = channel.outgoing;
  if (!outgoing || !(outgoing.state === 'open' || outgoing.state === 'eof') || typeof protocol?.signal !== 'function') {
    try {
      // Another ssh2 version: its public method, which does what it can.
      stream.signal(name);
    } catch {
      // channel already gone
    }
    return;
  }
  const write = protocol._packetRW?.write;
  const original = write?.finalize;
  const callbacks = channel._callbacks;
  const start = write?.allocStart;
  if (!onAnswer || !write || typeof original !== 'function' || !Array.isArray(callbacks) || typeof start !== 'number') {
    try {
      protocol.signal(outgoing.id, name);
    } catch {
      // channel already gone
    }
    return;
  }
  const own = Object.prototype.hasOwnProperty.call(write, 'finalize');
  const answer = (failed: boolean): void => onAnswer(!failed);
  write.finalize = function (this: unknown, packet: Buffer, ...rest: unknown[]) {
    // byte SSH_MSG_CHANNEL_REQUEST, uint32 channel, string "signal", boolean want-reply, string name
    const at = packet.indexOf('signal', start, 'latin1');
    if (at >= 0) packet[at + 'signal'.length] = 1;
    return original.call(this, packet, ...rest);
  };
  callbacks.push(answer);
  try {
    protocol.signal(outgoing.id, name);
  } catch {
    const i = callbacks.indexOf(answer);
    if (i >= 0) callbacks.splice(i, 1);
  } finally {
    if (own) write.finalize = original;
    else delete write.finalize;
  }
}

function transferError(verb: string, from: string, to: string, target: string, error: Error): Error {
  return new Error(`${verb} ${showPath(from)} -> ${showPath(to)} on ${target} failed: ${error.message}`, { cause: error });
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
      if (error.code === 'ECONNREFUSED') {
        // Nothing listens there (a wrong port, sshd not running): waiting will not change it. sshd's
        // MaxStartups, which retrying is for, accepts the connection and then closes it.
        reject(new ConnectionError(`could not connect to ${host}:${port}: connection refused (nothing is listening on that port: check the port and that sshd runs); not retried`, null, false, { cause: error }));
        return;
      }
      const transient = ['ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(error.code ?? '');
      reject(new ConnectionError(`could not connect to ${host}:${port}: ${error.message}${transient ? '' : '; not retried'}`, null, transient, { cause: error }));
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
  const transient = /ECONNRESET|handshake|Connection lost|socket hang up|closed/i.test(error.message);
  return new ConnectionError(`could not connect to ${target}: ${error.message}`, site, transient, { cause: error });
}

/** A counting semaphore: at most `size` holders at once, FIFO. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async acquire(): Promise<() => void> {
    if (this.active < this.size) {
      this.active++;
    } else {
      // Woken by a release that hands its place straight over (so `tryAcquire` cannot take it in between).
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    return this.releaser();
  }

  /** A place if one is free now, else nothing (no waiting). */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.size) return undefined;
    this.active++;
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }
}
