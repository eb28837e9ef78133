/**
 * A stream for the line-by-line views (plain, --json) when nobody watches
 * them live: the lines written during one turn of the event loop go out as
 * one write. Written one line at a time, a 50-site run spent most of its
 * time in write(2) (the bench's profile: 63% in one blocking write per view
 * line, since stdio to a pipe is blocking, see blockingStdio).
 *
 * At most `limit` bytes wait (then they go at once: memory stays flat for any
 * amount of output), and nothing waits past the turn, the run's end or the
 * process's exit. Only for pipes and files: on a terminal a question may be
 * drawn right after a line, and must not overtake it.
 *
 * @example
 * const out = coalescedOut(process.stdout);
 * new PlainView({ out, color: false, showOutput: true });
 */
export interface CoalescedOut {
  write(text: string): boolean;
  /** Write what waits, now. */
  flush(): void;
  /** Flush, and stop watching for the process's exit (the run is over). */
  close(): void;
  readonly isTTY?: boolean;
}

/** Every open CoalescedOut's flush, for the one exit handler. */
const open = new Set<() => void>();
let exitHandler = false;

export function coalescedOut(stream: NodeJS.WritableStream & { isTTY?: boolean }, limit = 64 * 1024): CoalescedOut {
  let pending: string[] = [];
  let size = 0;
  let scheduled: NodeJS.Immediate | undefined;
  const flush = (): void => {
    if (scheduled) clearImmediate(scheduled);
    scheduled = undefined;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    size = 0;
    stream.write(text);
  };
  // The process may exit (process.exit, an escaped error) before the next turn.
  open.add(flush);
  if (!exitHandler) {
    exitHandler = true;
    process.on('exit', () => {
      for (const pendingFlush of open) pendingFlush();
    });
  }
  return {
    isTTY: stream.isTTY,
    write(text: string): boolean {
      pending.push(text);
      size += text.length;
      if (size >= limit) flush();
      else scheduled ??= setImmediate(flush);
      return true;
    },
    flush,
    close() {
      flush();
      open.delete(flush);
    },
  };
}
