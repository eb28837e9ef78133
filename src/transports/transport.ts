/**
 * The one small interface every way of running a command sits behind:
 * ssh2, a local child process, the dry-run printer and test fakes. The
 * runner above it knows nothing of which one it talks to.
 */
export interface Transport {
  /** `user@host:port` for SSH, `local` for the operator's machine. */
  readonly target: string;
  /** Open the connection if it is not open yet; idempotent. Aborting `signal` (Ctrl-C) gives up a connect under way. */
  connect(signal?: AbortSignal): Promise<void>;
  /** Run one shell line; resolves when it ends (never rejects for a non-zero exit). */
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  /** Copy a local file to the target. */
  put(localPath: string, remotePath: string): Promise<void>;
  /** Copy a file from the target to the operator's machine. */
  get(remotePath: string, localPath: string): Promise<void>;
  /** Close the connection; running commands are ended. Idempotent. */
  close(): Promise<void>;
  /**
   * False once the connection was lost or given up (SSH): nothing more can
   * run over it, so the lock release opens a new one. Absent means usable.
   */
  readonly usable?: boolean;
}

export interface ExecOptions {
  onStdout?: (chunk: string) => void;
  onStderr?: (chunk: string) => void;
  /** Written to the command's stdin, then stdin is closed (sudo passwords). */
  stdin?: string;
  /** Aborting ends the command: the process gets `killSignal` and its channel closes. */
  signal?: AbortSignal;
  /**
   * The command is a POSIX sh script the tool wrote itself (the deploy lock,
   * the history), not the user's: a shell already running on the server may
   * run it in a subshell instead of starting the user's login shell for it.
   * Transports without such a shell ignore it.
   */
  ownScript?: boolean;
}

export interface ExecResult {
  exitCode: number | null;
  /** Signal name without `SIG`, as SSH reports it. */
  signal: string | null;
  /**
   * Set when the command was told to stop (timeout, Ctrl-C) but the server
   * never confirmed it ended, and the connection was given up: says so, for
   * the user. The exit status is then unknown (null).
   */
  unconfirmed?: string;
}
