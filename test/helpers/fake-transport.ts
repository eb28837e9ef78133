import type { ResolvedSite } from '../../src/config/load.ts';
import { ConnectionError } from '../../src/core/errors.ts';
import type { ExecOptions, ExecResult, Transport } from '../../src/transports/transport.ts';

/** What a scripted command does: its output, how it ends, how long it takes. */
export interface FakeReply {
  exitCode?: number | null;
  signal?: string | null;
  stdout?: string;
  stderr?: string;
  delayMs?: number;
  /** Thrown instead of a result, like a connection lost mid-command. */
  error?: Error;
}

/** Decides each command's reply; undefined means exit 0, no output. */
export type FakeScript = (command: string, transport: FakeTransport) => FakeReply | undefined;

export interface FakeTransportOptions {
  site?: string;
  script?: FakeScript;
  /** How long the handshake takes. */
  connectDelayMs?: number;
  /** Connecting fails with this (a refused login, an unknown host key). */
  connectError?: Error;
  /** Told when a handshake starts and ends, so a fleet can count them. */
  onHandshake?: (delta: 1 | -1) => void;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * A Transport with scripted results, standing in for SSH in executor tests.
 * Like SshTransport it connects lazily on first use, so a test can see
 * whether handshakes were limited. Records every command, put and get.
 *
 * @example
 * const t = new FakeTransport('alleged@web1:22', { script: (cmd) => (cmd.includes('migrate') ? { exitCode: 1, stderr: 'boom' } : undefined) });
 */
export class FakeTransport implements Transport {
  readonly commands: string[] = [];
  readonly transfers: string[] = [];
  /** Handshakes that reached this transport (a connect() that was not already done). */
  handshakes = 0;
  connected = false;
  closed = false;
  private connecting: Promise<void> | undefined;

  constructor(
    readonly target: string,
    private readonly options: FakeTransportOptions = {},
  ) {}

  connect(): Promise<void> {
    if (this.closed) return Promise.reject(new ConnectionError(`connection to ${this.target} is closed`, this.options.site ?? null));
    this.connecting ??= (async () => {
      this.handshakes++;
      this.options.onHandshake?.(1);
      try {
        await sleep(this.options.connectDelayMs ?? 0);
        if (this.options.connectError) throw this.options.connectError;
        this.connected = true;
      } finally {
        this.options.onHandshake?.(-1);
      }
    })().catch((error: unknown) => {
      this.connecting = undefined;
      throw error;
    });
    return this.connecting;
  }

  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    await this.connect();
    this.commands.push(command);
    const reply = this.options.script?.(command, this) ?? {};
    await sleep(reply.delayMs ?? 0, options.signal);
    if (reply.error) throw reply.error;
    if (reply.stdout) options.onStdout?.(reply.stdout);
    if (reply.stderr) options.onStderr?.(reply.stderr);
    if (options.signal?.aborted) return { exitCode: null, signal: 'TERM' };
    return { exitCode: reply.exitCode === undefined ? 0 : reply.exitCode, signal: reply.signal ?? null };
  }

  async put(localPath: string, remotePath: string): Promise<void> {
    await this.connect();
    this.transfers.push(`put ${localPath} ${remotePath}`);
  }

  async get(remotePath: string, localPath: string): Promise<void> {
    await this.connect();
    this.transfers.push(`get ${remotePath} ${localPath}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.connected = false;
  }
}

/**
 * Fake transports for a whole fleet: one per site, made on demand by
 * `transportFor` (pass it to execute()), with counts across all of them:
 * handshakes under way at once, connections open at once.
 */
export class FakeFleet {
  readonly transports = new Map<string, FakeTransport>();
  handshaking = 0;
  peakHandshaking = 0;
  peakOpen = 0;

  constructor(private readonly perSite: (site: ResolvedSite) => Omit<FakeTransportOptions, 'onHandshake' | 'site'> = () => ({})) {}

  /** Connections open now: connected and not closed. */
  get open(): number {
    return [...this.transports.values()].filter((t) => t.connected && !t.closed).length;
  }

  readonly transportFor = (site: ResolvedSite): FakeTransport => {
    const transport = new FakeTransport(`${site.user}@${site.host}:${site.port ?? 22}`, {
      ...this.perSite(site),
      site: site.name,
      onHandshake: (delta) => {
        this.handshaking += delta;
        this.peakHandshaking = Math.max(this.peakHandshaking, this.handshaking);
        if (delta === -1) queueMicrotask(() => (this.peakOpen = Math.max(this.peakOpen, this.open)));
      },
    });
    this.transports.set(site.name, transport);
    return transport;
  };

  /** Every command a site ran, in order. */
  commandsOf(site: string): string[] {
    return this.transports.get(site)?.commands ?? [];
  }
}
