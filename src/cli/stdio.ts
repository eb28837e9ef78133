/**
 * Make writes to stdout and stderr blocking when they are pipes (CI logs,
 * `deploy ... | tee log`), as they are for a terminal or a file.
 *
 * Node writes to a pipe asynchronously and queues what the reader has not
 * taken yet in memory, without limit: a command that prints 2 GB to a slow
 * reader would be held in our memory. Blocking writes pace the whole run
 * at the reader's speed instead; the SSH channel's window then stops the
 * server, and memory stays flat.
 *
 * @example blockingStdio(); // first thing in a command that streams output
 */
export function blockingStdio(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    const handle = (stream as unknown as { _handle?: { setBlocking?: (blocking: boolean) => number } })._handle;
    // Only pipes need it (TTYs and files already block); setBlocking exists on pipe handles only.
    if (!stream.isTTY) handle?.setBlocking?.(true);
  }
}

/**
 * When the reader of stdout or stderr goes away (`deploy ... | head -1`),
 * stop writing to that stream, quietly, as Unix tools do, instead of an
 * EPIPE stack trace. A run is not cut short for it: a deploy stopped
 * because nobody reads its log any more would be left half-done, so it
 * finishes and exits with its own code; only its output is gone.
 *
 * @example quietWhenReaderLeaves(); // first thing in main()
 */
export function quietWhenReaderLeaves(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  for (const stream of streams) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
      // Later writes go nowhere rather than failing again.
      stream.write = ((...args: unknown[]) => {
        const callback = args.find((a) => typeof a === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      }) as typeof stream.write;
    });
  }
}
