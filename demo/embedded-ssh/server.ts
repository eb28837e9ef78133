/**
 * An in-process SSH server on a loopback port, built on ssh2's server side.
 *
 * It behaves like a minimal OpenSSH sshd for one or more users that live in
 * ordinary directories: publickey auth only, `exec` via `/bin/sh -c` with the
 * user's home as cwd and HOME, signals and exit statuses as sshd reports
 * them, and an SFTP subsystem. Commands run as the Unix user running this
 * process, so it needs no root: the engine's tests use it for real SSH, and
 * the demo deploys to a throwaway home through it.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import ssh2, { type AuthContext, type Connection, type ParsedKey, type Session } from 'ssh2';
import { killGroups, spawnForChannel, type RunningCommand } from './exec.ts';
import { serveSftp } from './sftp.ts';

const { Server, utils } = ssh2;

/**
 * A running embedded SSH server; see {@link startEmbeddedSshServer}.
 *
 * @example
 * await fs.writeFile(knownHostsPath, `${server.knownHostsLine}\n`);
 * // ssh -p ${server.port} -o UserKnownHostsFile=... site@127.0.0.1 'uname'
 * expect(server.stats.commands).toContain('uname');
 * await server.close();
 */
export interface EmbeddedSshServer {
  /** Always loopback: the server never listens on other interfaces. */
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Host public key as one OpenSSH line, e.g. `ssh-ed25519 AAAA...`. */
  readonly hostPublicKey: string;
  /** Line for a known_hosts file: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`. */
  readonly knownHostsLine: string;
  /** `SHA256:...` fingerprint of the host key, as `ssh-keygen -l` prints it. */
  readonly hostKeyFingerprint: string;
  /**
   * Counters for tests: TCP connections accepted, session channels opened
   * (one per exec or SFTP use), and every exec'd command line in order.
   */
  readonly stats: { connections: number; sessions: number; commands: string[] };
  /**
   * Stops listening, drops live connections and SIGKILLs every process group
   * the server started. Resolves once all of that is done; safe to call twice.
   */
  close(): Promise<void>;
}

/**
 * Options for {@link startEmbeddedSshServer}.
 *
 * @example
 * // Two site users, each with its own home, one deploy key:
 * { homes: { 'shop': '/tmp/demo/shop', 'blog': '/tmp/demo/blog' }, authorizedKeys: [keys.publicKey] }
 */
export interface EmbeddedSshServerOptions {
  /**
   * Home of every accepted user without an entry in `homes`: commands run
   * with cwd and HOME set to it, and relative SFTP paths resolve against it.
   * Required unless `homes` is given.
   */
  home?: string;
  /** Per-user homes, e.g. `{ 'site-a': '/tmp/x/a', 'site-b': '/tmp/x/b' }`. */
  homes?: Record<string, string>;
  /**
   * Accepted usernames. Default: any name when `home` is set, otherwise only
   * the users in `homes`. Users listed in `homes` are always accepted.
   */
  users?: string[];
  /**
   * OpenSSH public keys accepted for publickey auth (any user may use any of
   * them). Each entry may be one `ssh-ed25519 AAAA... comment` line or a whole
   * authorized_keys text; blank and `#` lines are skipped.
   */
  authorizedKeys: string[];
  /** Host private key (PEM or OpenSSH). A fresh ed25519 key when absent. */
  hostKey?: string | Buffer;
  /** Port on 127.0.0.1; 0 or absent picks a free one. */
  port?: number;
  /** Extra environment for commands, applied over PATH/HOME/USER/LOGNAME/SHELL. */
  env?: Record<string, string>;
  /** Receives diagnostics (connection errors, ssh2 protocol debug lines). */
  debug?: (line: string) => void;
}

/**
 * Starts an SSH server on 127.0.0.1 that accepts the given public keys and
 * runs commands in the given home directory.
 *
 * @example
 * const keys = generateKeyPair();
 * const home = await fs.mkdtemp(path.join(os.tmpdir(), 'site-'));
 * const server = await startEmbeddedSshServer({ home, authorizedKeys: [keys.publicKey] });
 * const client = new Client();
 * client.connect({ host: server.host, port: server.port, username: 'deploy', privateKey: keys.privateKey });
 * // ... client.exec('pwd', ...) prints `home`
 * await server.close();
 */
export async function startEmbeddedSshServer(opts: EmbeddedSshServerOptions): Promise<EmbeddedSshServer> {
  const log = opts.debug;
  const defaultHome = opts.home === undefined ? undefined : path.resolve(opts.home);
  const homes = new Map(Object.entries(opts.homes ?? {}).map(([user, dir]) => [user, path.resolve(dir)]));
  if (defaultHome === undefined && homes.size === 0) {
    throw new Error('startEmbeddedSshServer: give `home` or `homes`');
  }
  const allowedUsers = opts.users ? new Set(opts.users) : undefined;
  // A Map, not the options object: usernames like "__proto__" must not hit prototypes.
  const homeFor = (user: string): string | undefined => {
    const own = homes.get(user);
    if (own !== undefined) return own;
    if (allowedUsers && !allowedUsers.has(user)) return undefined;
    return defaultHome;
  };

  const authorized = parseAuthorizedKeys(opts.authorizedKeys);
  const hostKeyData = opts.hostKey ?? generateKeyPair().privateKey;
  const hostKey = parsePrivateKey(hostKeyData);
  const hostBlob = hostKey.getPublicSSH();
  const hostPublicKey = `${hostKey.type} ${hostBlob.toString('base64')}`;
  const hostKeyFingerprint = `SHA256:${createHash('sha256').update(hostBlob).digest('base64').replace(/=+$/, '')}`;

  const stats = { connections: 0, sessions: 0, commands: [] as string[] };
  const sockets = new Set<net.Socket>();
  const running = new Set<RunningCommand>();
  const groups = new Set<number>();
  let closing = false;

  const sshServer = new Server(
    {
      hostKeys: [hostKeyData],
      ident: 'deployfile_embedded_sshd',
      ...(log ? { debug: (line: string) => log(`ssh2: ${line}`) } : {}),
    },
    (conn: Connection) => {
      let user: string | undefined;
      let home: string | undefined;
      const connCommands = new Set<RunningCommand>();
      // Without an 'error' listener ssh2's EventEmitter would throw and take
      // the whole process down because of one bad client.
      conn.on('error', (err: Error) => log?.(`connection error: ${err.message}`));
      conn.on('authentication', (ctx: AuthContext) => {
        const accepted = authenticate(ctx, homeFor(ctx.username), authorized);
        if (accepted === 'verified') {
          user = ctx.username;
          home = homeFor(ctx.username);
        }
      });
      conn.on('session', (accept, reject) => {
        // ssh2 only opens channels after auth succeeded, so user/home are set.
        if (user === undefined || home === undefined) return reject();
        const session = accept();
        stats.sessions++;
        handleSession(session, user, home);
      });
      conn.on('close', () => {
        // ssh2 normally closes each channel (and we kill its command) when
        // the socket dies; this is the backstop for a channel it missed.
        for (const cmd of connCommands) cmd.kill();
      });

      const handleSession = (session: Session, username: string, userHome: string): void => {
        let cmd: RunningCommand | undefined;
        // Accepted and ignored: commands still get pipes, not a terminal.
        session.on('pty', (acceptPty) => acceptPty?.());
        session.on('window-change', (acceptChange) => acceptChange?.());
        // Like sshd without AcceptEnv: refuse, so the client's env can't leak in.
        session.on('env', (_accept, reject) => reject?.());
        session.on('signal', (acceptSignal, reject, info) => {
          if (cmd?.signal(info.name)) acceptSignal?.();
          else reject?.();
        });
        session.on('exec', (acceptExec, _reject, info) => {
          const channel = acceptExec();
          if (!channel) return;
          stats.commands.push(info.command);
          const env: Record<string, string> = {
            PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
            HOME: userHome,
            USER: username,
            LOGNAME: username,
            SHELL: '/bin/sh',
            ...opts.env,
          };
          const started = spawnForChannel(channel, info.command, { cwd: userHome, env, groups });
          cmd = started;
          running.add(started);
          connCommands.add(started);
          void started.exited.then(() => {
            running.delete(started);
            connCommands.delete(started);
          });
          if (closing) started.kill();
        });
        session.on('sftp', (acceptSftp) => {
          const sftp = acceptSftp();
          if (sftp) serveSftp(sftp, userHome, log);
        });
      };
    },
  );

  // We own the listening socket and hand connections to ssh2 through its
  // documented injectSocket(): that way close() can destroy live sockets,
  // which ssh2's Server offers no way to enumerate.
  const listener = net.createServer((socket) => {
    stats.connections++;
    if (closing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', (err) => log?.(`socket error: ${err.message}`));
    // Exec is many tiny request/reply round trips: with Nagle plus delayed
    // ACKs each command costs ~40 ms instead of ~3 ms (clients should call
    // ssh2's conn.setNoDelay() for the same reason).
    socket.setNoDelay(true);
    sshServer.injectSocket(socket);
  });
  listener.on('error', (err) => log?.(`listener error: ${err.message}`));

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    listener.once('error', onError);
    listener.listen(opts.port ?? 0, '127.0.0.1', () => {
      listener.off('error', onError);
      resolve();
    });
  });
  const port = (listener.address() as net.AddressInfo).port;

  let closed: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    hostPublicKey,
    // known_hosts writes the default port bare and any other as [host]:port.
    knownHostsLine: `${port === 22 ? '127.0.0.1' : `[127.0.0.1]:${port}`} ${hostPublicKey}`,
    hostKeyFingerprint,
    stats,
    close(): Promise<void> {
      closed ??= (async () => {
        closing = true;
        const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
        for (const cmd of running) cmd.kill();
        for (const socket of sockets) socket.destroy();
        await Promise.all([...running].map((cmd) => cmd.exited));
        await killGroups(groups); // background jobs that outlived their shell
        await listenerClosed;
      })();
      return closed;
    },
  };
}

/**
 * Decides one authentication request: publickey only, for a known user, with
 * a key from `authorized`. The query phase (no signature: "would this key
 * do?") is answered with PK_OK via ctx.accept() without logging in.
 */
function authenticate(
  ctx: AuthContext,
  home: string | undefined,
  authorized: ParsedKey[],
): 'verified' | 'query-ok' | 'rejected' {
  const onlyPublickey = ['publickey'] as const;
  if (ctx.method !== 'publickey' || home === undefined) {
    ctx.reject([...onlyPublickey]);
    return 'rejected';
  }
  const offered = ctx.key;
  const key = authorized.find((k) => k.type === offered.algo && k.getPublicSSH().equals(offered.data));
  if (!key) {
    ctx.reject([...onlyPublickey]);
    return 'rejected';
  }
  if (!ctx.signature || !ctx.blob) {
    ctx.accept(); // for publickey without signature, ssh2 sends USERAUTH_PK_OK
    return 'query-ok';
  }
  // The signature over the session id proves the client holds the private key.
  if (key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
    ctx.reject([...onlyPublickey]);
    return 'rejected';
  }
  ctx.accept();
  return 'verified';
}

/**
 * Generates an ed25519 key pair in OpenSSH format, usable as a client key
 * (pass `publicKey` in `authorizedKeys`) or as a host key.
 *
 * @example
 * const { privateKey, publicKey } = generateKeyPair('deploy@demo');
 * await fs.writeFile(path.join(dir, 'id_ed25519'), privateKey, { mode: 0o600 });
 * // publicKey: 'ssh-ed25519 AAAAC3Nza... deploy@demo'
 */
export function generateKeyPair(comment?: string): { privateKey: string; publicKey: string } {
  // ssh2 1.17's ed25519 keygen strips *all* leading zero bytes from the
  // public key (meaning to strip the BIT STRING padding byte), so about 1 key
  // in 256 comes out 31 bytes long and unusable. Check each pair and retry.
  for (let attempt = 0; attempt < 64; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', comment ? { comment } : {});
    if (!isUsableKeyPair(pair.private, pair.public)) continue;
    return {
      // OpenSSH's `ssh -i` rejects private key files without a final newline.
      privateKey: pair.private.endsWith('\n') ? pair.private : `${pair.private}\n`,
      publicKey: pair.public.trim(),
    };
  }
  throw new Error('generateKeyPair: could not generate a valid ed25519 key');
}

/** True if both halves parse, match, and a signature round-trips. */
function isUsableKeyPair(privateKey: string, publicKey: string): boolean {
  const priv = single(utils.parseKey(privateKey));
  const pub = single(utils.parseKey(publicKey));
  if (priv instanceof Error || pub instanceof Error) return false;
  if (!priv.getPublicSSH().equals(pub.getPublicSSH())) return false;
  const probe = Buffer.from('deployfile key check');
  const sig = priv.sign(probe);
  return !(sig instanceof Error) && pub.verify(probe, sig) === true;
}

/**
 * OpenSSH-style `SHA256:...` fingerprint of a public key line, to compare with
 * {@link EmbeddedSshServer.hostKeyFingerprint} or `ssh-keygen -lf` output.
 *
 * @example
 * publicKeyFingerprint(server.hostPublicKey) === server.hostKeyFingerprint; // true
 */
export function publicKeyFingerprint(publicKeyLine: string): string {
  const key = parsePublicKey(publicKeyLine);
  return `SHA256:${createHash('sha256').update(key.getPublicSSH()).digest('base64').replace(/=+$/, '')}`;
}

function parseAuthorizedKeys(entries: string[]): ParsedKey[] {
  const keys: ParsedKey[] = [];
  for (const entry of entries) {
    for (const raw of entry.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      keys.push(parsePublicKey(line));
    }
  }
  return keys;
}

/** Parses one authorized_keys line; a leading options field is skipped. */
function parsePublicKey(line: string): ParsedKey {
  const direct = single(utils.parseKey(line));
  if (!(direct instanceof Error)) return direct;
  // `from="..." ssh-ed25519 AAAA...`: retry from the key type onwards.
  const m = /(?:^|\s)((?:ssh-|ecdsa-|sk-)\S+\s+[A-Za-z0-9+/=]+.*)$/.exec(line);
  const retried = m?.[1] === undefined ? direct : single(utils.parseKey(m[1]));
  if (retried instanceof Error) throw new Error(`invalid authorized key "${line.slice(0, 40)}...": ${retried.message}`);
  return retried;
}

function parsePrivateKey(data: string | Buffer): ParsedKey {
  const key = single(utils.parseKey(data));
  if (key instanceof Error) throw new Error(`invalid host key: ${key.message}`);
  if (!key.isPrivateKey()) throw new Error('invalid host key: not a private key');
  return key;
}

/** ssh2's parseKey may return an array for OpenSSH-format files. */
function single(parsed: ParsedKey | ParsedKey[] | Error): ParsedKey | Error {
  if (Array.isArray(parsed)) return parsed[0] ?? new Error('no key found');
  return parsed;
}
