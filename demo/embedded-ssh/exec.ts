/**
 * The `exec` half of the embedded SSH server: runs one command for one SSH
 * session channel the way OpenSSH's sshd does (`$SHELL -c <command>` with
 * pipes, no pty), and tracks process groups so the server can kill everything
 * it started.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { ServerChannel } from 'ssh2';

/**
 * Signal names (without `SIG`) that RFC 4254 §6.9/§6.10 defines for `signal`
 * and `exit-signal` requests. ssh2 refuses to *send* any other name in an
 * `exit-signal`, so other signals are reported as `128 + n` exit codes.
 */
const SSH_SIGNALS: ReadonlySet<string> = new Set([
  'ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2',
]);

/**
 * A command started by {@link spawnForChannel}.
 *
 * @example
 * if (!cmd.signal('INT')) reject(); // nothing running, or not an SSH signal name
 * await cmd.exited;
 */
export interface RunningCommand {
  /** Process group id (= pid of the `sh` we spawned), undefined if spawning failed. */
  readonly pgid: number | undefined;
  /** Resolves once the `sh` process has exited (or failed to start). */
  readonly exited: Promise<void>;
  /**
   * Delivers a client `signal` request (`'TERM'` or `'SIGTERM'`) to the whole
   * process group. Returns false for unknown names or when nothing runs.
   */
  signal(name: string): boolean;
  /** SIGKILLs the process group while the shell runs; used on disconnect. */
  kill(): void;
}

/**
 * Where and how {@link spawnForChannel} runs a command.
 *
 * @example
 * { cwd: home, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home }, groups: new Set() }
 */
export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
  /**
   * Process groups that may outlive their `sh` (e.g. `nohup x &`). Added on
   * spawn, removed once the group is gone, so `close()` can kill leftovers.
   */
  groups: Set<number>;
}

/**
 * Runs `/bin/sh -c <command>` for an accepted exec channel: stdout and stderr
 * stream to the channel (stderr as extended data), channel input goes to stdin
 * and channel EOF closes stdin. When the shell exits, all output is flushed,
 * then `exit-status` (or `exit-signal`) is sent and the channel is closed. If
 * the client closes the channel first, the process group is killed.
 *
 * @example
 * session.on('exec', (accept, _reject, info) => {
 *   const cmd = spawnForChannel(accept(), info.command, { cwd: home, env, groups });
 *   session.on('signal', (ok, no, sig) => (cmd.signal(sig.name) ? ok?.() : no?.()));
 * });
 */
export function spawnForChannel(channel: ServerChannel, command: string, opts: SpawnOptions): RunningCommand {
  // detached: the shell leads a new process group, so signals reach the
  // whole pipeline (`sh -c 'sleep 100; echo'` forks sleep as a child).
  const child = spawn('/bin/sh', ['-c', command], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pgid = child.pid;
  if (pgid !== undefined) opts.groups.add(pgid);

  let running = pgid !== undefined;
  let channelClosed = false;
  let finished = false;
  let markExited!: () => void;
  const exited = new Promise<void>((resolve) => (markExited = resolve));
  let onChannelClosed!: () => void;
  const closed = new Promise<void>((resolve) => (onChannelClosed = resolve));

  const killGroup = (sig: NodeJS.Signals): boolean => {
    if (pgid === undefined) return false;
    try {
      process.kill(-pgid, sig);
      return true;
    } catch {
      return false; // ESRCH: the group is already gone
    }
  };

  // Errors on these streams (EPIPE when the command ignores its input, write
  // after the client closed the channel) are expected and must not crash us.
  child.stdin.on('error', () => {});
  child.stdout.on('error', () => {});
  child.stderr.on('error', () => {});
  channel.on('error', () => {});
  channel.stderr.on('error', () => {});

  const output = new OutputPump(channel, [child.stdout, child.stderr]);
  child.stdout.on('data', (chunk: Buffer) => output.push(false, chunk));
  child.stderr.on('data', (chunk: Buffer) => output.push(true, chunk));
  channel.pipe(child.stdin); // channel EOF ends stdin (heredocs, `cat`, sudo -S)
  // If the command closes its stdin early, pipe() stops reading the channel;
  // keep it flowing (input is discarded) or ssh2 never emits the channel's
  // 'end'/'close' and we would miss the client going away.
  child.stdin.on('close', () => {
    channel.unpipe(child.stdin);
    channel.resume();
  });

  channel.on('close', () => {
    channelClosed = true;
    onChannelClosed();
    // The client went away (closed the channel or dropped the connection):
    // nobody can read the output any more, so don't leave the command running.
    if (running) killGroup('SIGKILL');
    output.stop(); // drop output nobody can read; never block the dying child
  });

  child.on('exit', () => {
    running = false;
    markExited();
    // Background jobs may still hold the group; forget it only when empty.
    if (pgid !== undefined && !groupAlive(pgid)) opts.groups.delete(pgid);
  });

  const finish = async (code: number | null, signal: NodeJS.Signals | null, error?: Error): Promise<void> => {
    if (finished) return;
    finished = true;
    running = false;
    markExited();
    if (channelClosed) return;
    if (error) output.push(true, Buffer.from(`deployfile embedded sshd: cannot run command: ${error.message}\n`));
    // 'close' means sh's stdout/stderr hit EOF and every chunk reached the
    // pump, but some may still wait for SSH window space. Drain it so that
    // exit-status comes after the last byte of output, like sshd.
    await Promise.race([output.idle(), closed]);
    if (channelClosed) return;
    try {
      sendExit(channel, error ? 127 : code, signal);
    } catch {
      // ssh2 throws for unsupported signal names; sendExit avoids them, but
      // never let a bookkeeping error take the server down.
    }
    channel.end(); // sends EOF + CLOSE once buffered stdout is out
  };

  child.on('close', (code, signal) => void finish(code, signal));
  child.on('error', (err) => {
    // Spawn failures (bad cwd, EAGAIN) have no pid; errors on a live child
    // (a failed kill) are not fatal to the command.
    if (pgid === undefined) void finish(null, null, err);
  });

  return {
    pgid,
    exited,
    signal(name: string): boolean {
      const bare = name.toUpperCase().replace(/^SIG/, '');
      if (!running || !SSH_SIGNALS.has(bare)) return false;
      return killGroup(`SIG${bare}` as NodeJS.Signals);
    },
    kill(): void {
      if (running) killGroup('SIGKILL');
    },
  };
}

/** Sends `exit-status`, or `exit-signal` with the name without `SIG`, like sshd. */
function sendExit(channel: ServerChannel, code: number | null, signal: NodeJS.Signals | null): void {
  if (signal !== null) {
    const bare = signal.replace(/^SIG/, '');
    if (SSH_SIGNALS.has(bare)) {
      channel.exit(bare, false, '');
      return;
    }
    // Not expressible in an exit-signal by ssh2: report it the way shells do.
    channel.exit(128 + (osConstants.signals[signal] ?? 0));
    return;
  }
  channel.exit(code ?? 255);
}

/**
 * Copies a command's stdout and stderr into an ssh2 server channel, one chunk
 * at a time across both streams.
 *
 * Why not two pipe()s: ssh2 1.17's server Channel keeps a single "waiting for
 * window" flag for stdout and stderr, resumes stdout first, and never clears
 * the stdout slot (`_chunk`/`_chunkcb`) after use. Once stdout has waited for
 * window once, a stderr write that has to wait is never resumed (the command
 * hangs) or stale stdout data is sent twice. Serialising the writes and
 * clearing those slots after every completed write avoids both.
 */
class OutputPump {
  /** Bytes queued before the command's pipes are paused (backpressure). */
  static readonly HIGH_WATER = 1024 * 1024;
  private readonly queue: Array<{ toStderr: boolean; data: Buffer }> = [];
  private queued = 0;
  private busy = false;
  private waiters: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly channel: ServerChannel,
    private readonly sources: NodeJS.ReadableStream[],
  ) {}

  push(toStderr: boolean, data: Buffer): void {
    if (this.stopped) return;
    this.queue.push({ toStderr, data });
    this.queued += data.length;
    if (this.queued > OutputPump.HIGH_WATER) for (const s of this.sources) s.pause();
    this.next();
  }

  /** Resolves once everything pushed so far has been handed to the transport. */
  idle(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The channel is gone: discard queued and future output, unpause sources. */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    for (const s of this.sources) s.resume();
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private next(): void {
    if (this.busy || this.stopped) return;
    const item = this.queue.shift();
    if (!item) {
      for (const resolve of this.waiters.splice(0)) resolve();
      return;
    }
    this.busy = true;
    const target = item.toStderr ? this.channel.stderr : this.channel;
    // The callback runs once ssh2 has sent the chunk (possibly after window
    // adjusts); after the channel closed it may never run, which is fine.
    target.write(item.data, () => {
      clearWindowWaitSlots(this.channel);
      this.busy = false;
      this.queued -= item.data.length;
      if (this.queued <= OutputPump.HIGH_WATER / 2) for (const s of this.sources) s.resume();
      this.next();
    });
  }
}

/** See {@link OutputPump}: forget ssh2's already-completed pending writes. */
function clearWindowWaitSlots(channel: ServerChannel): void {
  const slots = channel as unknown as Record<string, unknown>;
  for (const key of ['_chunk', '_chunkcb', '_chunkErr', '_chunkcbErr']) {
    if (key in slots) slots[key] = undefined;
  }
}

/**
 * True if a live (non-zombie) process is still in process group `pgid`.
 *
 * @example
 * if (groupAlive(cmd.pgid)) cmd.kill();
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false; // ESRCH; or EPERM: the id was reused by someone else's group
  }
  // kill(0) also succeeds for zombies. Killed background jobs are orphans
  // that only PID 1 reaps, and in containers PID 1 often reaps late or never,
  // so on Linux look at the members' states instead of waiting for that.
  return hasLiveMember(pgid);
}

function hasLiveMember(pgid: number): boolean {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return true; // no procfs (macOS): trust kill(0)
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may contain spaces and parens.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

/**
 * SIGKILLs every remaining process group in `groups` and waits (bounded by
 * `timeoutMs`) until they are gone, so a closed server leaves no processes.
 *
 * @example
 * await killGroups(groups); // in EmbeddedSshServer.close()
 */
export async function killGroups(groups: Set<number>, timeoutMs = 2000): Promise<void> {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      groups.delete(pgid);
    }
  }
  // Orphaned background jobs are reaped by init, not by us: poll for it.
  const deadline = Date.now() + timeoutMs;
  while (groups.size > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    for (const pgid of groups) if (!groupAlive(pgid)) groups.delete(pgid);
  }
}
