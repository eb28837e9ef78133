/**
 * The SFTP subsystem of the embedded SSH server: SFTP v3 requests (as parsed
 * by ssh2's server-mode SFTPWrapper) mapped onto node:fs, with the status
 * codes OpenSSH's sftp-server returns.
 */
import { constants as fsConstants, promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import ssh2, { type Attributes, type FileEntry, type SFTPWrapper } from 'ssh2';

const { OPEN_MODE, STATUS_CODE } = ssh2.utils.sftp;

/** Largest chunk answered per READ; clients ask for ~32 KiB, a short read is legal. */
const MAX_READ = 64 * 1024;
/** Directory entries per READDIR reply (OpenSSH sends up to 100). */
const READDIR_BATCH = 100;

type OpenHandle =
  | { kind: 'file'; fh: FileHandle; path: string }
  | { kind: 'dir'; path: string; names: string[]; next: number };

/** A protocol-level failure answered with a specific status code. */
class SftpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Serves one accepted SFTP channel for a user whose relative paths resolve
 * against `home` (like sshd, which starts sftp-server in the home directory).
 * Handles are closed when the channel ends.
 *
 * @example
 * session.on('sftp', (accept) => serveSftp(accept(), '/tmp/site-home'));
 */
export function serveSftp(sftp: SFTPWrapper, home: string, log?: (line: string) => void): void {
  const handles = new Map<number, OpenHandle>();
  let nextHandle = 0;
  let ended = false;

  const resolve = (p: string): string => path.resolve(home, p === '' ? '.' : p);

  const addHandle = (h: OpenHandle): Buffer => {
    const id = nextHandle++ >>> 0;
    handles.set(id, h);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(id, 0);
    return buf;
  };
  const lookup = (handle: Buffer): OpenHandle => {
    const h = handle.length === 4 ? handles.get(handle.readUInt32BE(0)) : undefined;
    if (!h) throw new SftpStatusError(STATUS_CODE.FAILURE, 'Invalid handle');
    return h;
  };
  const fileHandle = (handle: Buffer): Extract<OpenHandle, { kind: 'file' }> => {
    const h = lookup(handle);
    if (h.kind !== 'file') throw new SftpStatusError(STATUS_CODE.FAILURE, 'Not a file handle');
    return h;
  };

  // Every request runs through here: whatever goes wrong becomes a status
  // reply for that request id, never an exception on the connection.
  const respond = (reqid: number, op: () => Promise<void>): void => {
    op().catch((err: unknown) => {
      const [code, message] = statusFor(err);
      try {
        sftp.status(reqid, code, message);
      } catch (sendErr) {
        log?.(`sftp: cannot send status: ${String(sendErr)}`);
      }
    });
  };
  const ok = (reqid: number): void => sftp.status(reqid, STATUS_CODE.OK);

  sftp.on('OPEN', (reqid: number, filename: string, flags: number, attrs: Partial<Attributes>) =>
    respond(reqid, async () => {
      const p = resolve(filename);
      const mode = typeof attrs.mode === 'number' ? attrs.mode & 0o7777 : 0o666;
      const fh = await fsp.open(p, toFsFlags(flags), mode);
      if (ended) {
        await fh.close(); // the channel went away while we were opening
        return;
      }
      sftp.handle(reqid, addHandle({ kind: 'file', fh, path: p }));
    }),
  );

  sftp.on('READ', (reqid: number, h: Buffer, offset: number | bigint, len: number) =>
    respond(reqid, async () => {
      const { fh } = fileHandle(h);
      const n = Math.min(len, MAX_READ);
      const buf = Buffer.allocUnsafe(n);
      const { bytesRead } = await fh.read(buf, 0, n, Number(offset));
      if (bytesRead === 0) sftp.status(reqid, STATUS_CODE.EOF);
      else sftp.data(reqid, buf.subarray(0, bytesRead));
    }),
  );

  sftp.on('WRITE', (reqid: number, h: Buffer, offset: number | bigint, data: Buffer) =>
    respond(reqid, async () => {
      const { fh } = fileHandle(h);
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, Number(offset) + done);
        done += bytesWritten;
      }
      ok(reqid);
    }),
  );

  sftp.on('CLOSE', (reqid: number, h: Buffer) =>
    respond(reqid, async () => {
      const entry = lookup(h);
      handles.delete(h.readUInt32BE(0));
      if (entry.kind === 'file') await entry.fh.close();
      ok(reqid);
    }),
  );

  sftp.on('FSTAT', (reqid: number, h: Buffer) =>
    respond(reqid, async () => {
      const entry = lookup(h);
      const st = entry.kind === 'file' ? await entry.fh.stat() : await fsp.stat(entry.path);
      sftp.attrs(reqid, toAttrs(st));
    }),
  );
  sftp.on('STAT', (reqid: number, p: string) =>
    respond(reqid, async () => sftp.attrs(reqid, toAttrs(await fsp.stat(resolve(p))))),
  );
  sftp.on('LSTAT', (reqid: number, p: string) =>
    respond(reqid, async () => sftp.attrs(reqid, toAttrs(await fsp.lstat(resolve(p))))),
  );

  sftp.on('SETSTAT', (reqid: number, p: string, attrs: Partial<Attributes>) =>
    respond(reqid, async () => {
      await applyAttrs(attrs, pathOps(resolve(p)));
      ok(reqid);
    }),
  );
  sftp.on('FSETSTAT', (reqid: number, h: Buffer, attrs: Partial<Attributes>) =>
    respond(reqid, async () => {
      const entry = lookup(h);
      if (entry.kind === 'file') {
        const { fh } = entry;
        await applyAttrs(attrs, {
          truncate: (size) => fh.truncate(size),
          chmod: (mode) => fh.chmod(mode),
          utimes: (a, m) => fh.utimes(a, m),
          chown: (uid, gid) => fh.chown(uid, gid),
        });
      } else {
        await applyAttrs(attrs, pathOps(entry.path));
      }
      ok(reqid);
    }),
  );

  sftp.on('OPENDIR', (reqid: number, p: string) =>
    respond(reqid, async () => {
      const dir = resolve(p);
      // A snapshot taken now, so ENOENT/ENOTDIR/EACCES surface on OPENDIR as
      // with OpenSSH; '.' and '..' are listed like sftp-server does (ssh2's
      // client readdir() filters them out).
      const names = await fsp.readdir(dir);
      if (ended) return;
      sftp.handle(reqid, addHandle({ kind: 'dir', path: dir, names: ['.', '..', ...names], next: 0 }));
    }),
  );

  sftp.on('READDIR', (reqid: number, h: Buffer) =>
    respond(reqid, async () => {
      const entry = lookup(h);
      if (entry.kind !== 'dir') throw new SftpStatusError(STATUS_CODE.FAILURE, 'Not a directory handle');
      const now = Date.now();
      const out: FileEntry[] = [];
      while (out.length === 0 && entry.next < entry.names.length) {
        // Claim the slice before awaiting so concurrent READDIRs never repeat names.
        const batch = entry.names.slice(entry.next, entry.next + READDIR_BATCH);
        entry.next += batch.length;
        const stats = await Promise.all(
          batch.map((name) => fsp.lstat(path.join(entry.path, name)).catch(() => undefined)),
        );
        batch.forEach((name, i) => {
          const st = stats[i];
          // Entries deleted since OPENDIR are skipped rather than failing the listing.
          if (st) out.push({ filename: name, longname: longname(name, st, now), attrs: toAttrs(st) });
        });
      }
      if (out.length === 0) sftp.status(reqid, STATUS_CODE.EOF);
      else sftp.name(reqid, out);
    }),
  );

  sftp.on('MKDIR', (reqid: number, p: string, attrs: Partial<Attributes>) =>
    respond(reqid, async () => {
      const mode = typeof attrs.mode === 'number' ? attrs.mode & 0o7777 : 0o777;
      await fsp.mkdir(resolve(p), { mode });
      ok(reqid);
    }),
  );
  sftp.on('RMDIR', (reqid: number, p: string) =>
    respond(reqid, async () => {
      await fsp.rmdir(resolve(p));
      ok(reqid);
    }),
  );
  sftp.on('REMOVE', (reqid: number, p: string) =>
    respond(reqid, async () => {
      await fsp.unlink(resolve(p));
      ok(reqid);
    }),
  );

  sftp.on('RENAME', (reqid: number, oldPath: string, newPath: string) =>
    respond(reqid, async () => {
      const from = resolve(oldPath);
      const to = resolve(newPath);
      // SFTP v3 RENAME must not replace an existing target; OpenSSH's
      // sftp-server refuses too (atomic replace is posix-rename@openssh.com,
      // which ssh2's server cannot advertise). Keep the semantics identical
      // so code tested here also works against a real sshd.
      if (await exists(to)) throw new SftpStatusError(STATUS_CODE.FAILURE, `${newPath}: target exists`);
      await fsp.rename(from, to);
      ok(reqid);
    }),
  );

  sftp.on('REALPATH', (reqid: number, p: string) =>
    respond(reqid, async () => {
      const abs = resolve(p);
      // Canonicalise existing paths; like newer OpenSSH, a path that does not
      // exist (yet) is still normalised instead of failing.
      const real = await fsp.realpath(abs).catch(() => abs);
      sftp.name(reqid, [nameOnly(real)]);
    }),
  );

  sftp.on('READLINK', (reqid: number, p: string) =>
    respond(reqid, async () => {
      sftp.name(reqid, [nameOnly(await fsp.readlink(resolve(p)))]);
    }),
  );
  // ssh2 already undoes OpenSSH's swapped argument order, so this is always
  // (linkPath, targetPath) -- despite @types/ssh2 naming them the other way.
  sftp.on('SYMLINK', (reqid: number, linkPath: string, targetPath: string) =>
    respond(reqid, async () => {
      await fsp.symlink(targetPath, resolve(linkPath)); // a relative target stays relative
      ok(reqid);
    }),
  );
  // EXTENDED requests have no listener: ssh2 answers OP_UNSUPPORTED itself.

  const cleanup = (): void => {
    if (ended) return;
    ended = true;
    for (const h of handles.values()) if (h.kind === 'file') void h.fh.close().catch(() => {});
    handles.clear();
  };
  sftp.on('error', (err: Error) => log?.(`sftp: ${err.message}`)); // malformed packets: ssh2 closes the channel
  // ssh2 does not answer the client's CHANNEL_CLOSE for SFTP channels by
  // itself (it does for exec channels); without this the client's sftp.end()
  // never sees 'close'.
  sftp.on('end', () => {
    cleanup();
    try {
      sendExitStatus(sftp, 0);
      sftp.end();
    } catch {
      // connection already gone
    }
  });
  sftp.on('close', cleanup);
}

/**
 * Reports the subsystem's exit-status the way sshd does when sftp-server
 * exits. OpenSSH's scp (SFTP mode since 9.0) fails with "Exit status -1"
 * without it. ssh2's SFTPWrapper has no exit(), so this uses the protocol
 * object it carries; if those internals ever change it quietly does nothing.
 */
function sendExitStatus(sftp: SFTPWrapper, code: number): void {
  const internals = sftp as unknown as {
    _protocol?: { exitStatus?: (channelId: number, status: number) => void };
    outgoing?: { id: number; state: string };
  };
  const { _protocol: protocol, outgoing } = internals;
  if (outgoing?.state === 'open' && typeof protocol?.exitStatus === 'function') {
    protocol.exitStatus(outgoing.id, code);
  }
}

/** SFTP pflags → numeric fs.open flags. */
function toFsFlags(pflags: number): number {
  const { O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_CREAT, O_TRUNC, O_EXCL } = fsConstants;
  const read = (pflags & OPEN_MODE.READ) !== 0;
  const write = (pflags & OPEN_MODE.WRITE) !== 0;
  let flags = read && write ? O_RDWR : write ? O_WRONLY : O_RDONLY;
  if (pflags & OPEN_MODE.APPEND) flags |= O_APPEND;
  if (pflags & OPEN_MODE.CREAT) flags |= O_CREAT;
  if (pflags & OPEN_MODE.TRUNC) flags |= O_TRUNC;
  if (pflags & OPEN_MODE.EXCL) flags |= O_EXCL;
  return flags;
}

function toAttrs(st: Stats): Attributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

/** A NAME entry carrying just a path (REALPATH/READLINK replies have no attrs). */
function nameOnly(p: string): FileEntry {
  // An empty attrs object encodes as "no attributes" (flags 0).
  return { filename: p, longname: p, attrs: {} as Attributes };
}

interface AttrOps {
  truncate(size: number): Promise<void>;
  chmod(mode: number): Promise<void>;
  utimes(atime: number, mtime: number): Promise<void>;
  chown(uid: number, gid: number): Promise<void>;
}

/** SETSTAT's operations on a path (FSETSTAT on an open directory does the same). */
function pathOps(target: string): AttrOps {
  return {
    truncate: (size) => fsp.truncate(target, size),
    chmod: (mode) => fsp.chmod(target, mode),
    utimes: (a, m) => fsp.utimes(target, a, m),
    chown: (uid, gid) => fsp.chown(target, uid, gid),
  };
}

/** Applies only the attributes the client sent, in sftp-server's order. */
async function applyAttrs(attrs: Partial<Attributes>, ops: AttrOps): Promise<void> {
  if (typeof attrs.size === 'number') await ops.truncate(attrs.size);
  if (typeof attrs.mode === 'number') await ops.chmod(attrs.mode & 0o7777);
  if (typeof attrs.atime === 'number' && typeof attrs.mtime === 'number') await ops.utimes(attrs.atime, attrs.mtime);
  if (typeof attrs.uid === 'number' && typeof attrs.gid === 'number') await ops.chown(attrs.uid, attrs.gid);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** errno → SFTP status, as OpenSSH's errno_to_portable() maps them. */
function statusFor(err: unknown): [number, string] {
  if (err instanceof SftpStatusError) return [err.status, err.message];
  const e = err as NodeJS.ErrnoException;
  const message = e?.message ?? String(err);
  switch (e?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EBADF':
    case 'ELOOP':
      return [STATUS_CODE.NO_SUCH_FILE, message];
    case 'EPERM':
    case 'EACCES':
      return [STATUS_CODE.PERMISSION_DENIED, message];
    case 'ENAMETOOLONG':
    case 'EINVAL':
      return [STATUS_CODE.BAD_MESSAGE, message];
    case 'ENOSYS':
      return [STATUS_CODE.OP_UNSUPPORTED, message];
    default:
      return [STATUS_CODE.FAILURE, message];
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS_MS = 182 * 24 * 3600 * 1000;

/** `ls -ln`-style line, the format sftp-server puts in READDIR longnames. */
function longname(name: string, st: Stats, now = Date.now()): string {
  const t = new Date(st.mtimeMs);
  const day = String(t.getDate()).padStart(2);
  const recent = Math.abs(now - st.mtimeMs) < SIX_MONTHS_MS;
  const when = recent
    ? `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}`
    : ` ${t.getFullYear()}`;
  return [
    modeString(st.mode),
    String(st.nlink).padStart(4),
    String(st.uid).padEnd(8),
    String(st.gid).padEnd(8),
    String(st.size).padStart(8),
    `${MONTHS[t.getMonth()]} ${day} ${when}`,
    name,
  ].join(' ');
}

/** `-rwxr-xr-x`-style rendering of st_mode, with setuid/setgid/sticky bits. */
function modeString(mode: number): string {
  const { S_IFMT, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } = fsConstants;
  const types: Record<number, string> = {
    [S_IFDIR]: 'd',
    [S_IFLNK]: 'l',
    [S_IFCHR]: 'c',
    [S_IFBLK]: 'b',
    [S_IFIFO]: 'p',
    [S_IFSOCK]: 's',
  };
  const bit = (mask: number, ch: string): string => (mode & mask ? ch : '-');
  const special = (exec: number, flag: number, set: string): string =>
    mode & flag ? (mode & exec ? set : set.toUpperCase()) : mode & exec ? 'x' : '-';
  return (
    (types[mode & S_IFMT] ?? '-') +
    bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's') +
    bit(0o040, 'r') + bit(0o020, 'w') + special(0o010, 0o2000, 's') +
    bit(0o004, 'r') + bit(0o002, 'w') + special(0o001, 0o1000, 't')
  );
}
