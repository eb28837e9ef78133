/**
 * A stand-in for a uWSGI emperor with one vassal, living inside the demo
 * process: the demo can't count on uWSGI being installed, and the point is
 * to show the real `touchVassalIni` task doing its real job against it.
 *
 * It behaves as touchVassalIni expects an emperor to: when the vassal ini's
 * mtime changes it restarts the vassal, writing a `*** Starting uWSGI` line
 * to the vassal's log (the evidence the task waits for), and the new
 * instance listens on the ini's `http-socket` and serves the code dir as it
 * is at that moment (see app.ts). The log line, not a new process, is the
 * evidence here: the instance lives in this process, so no new pid appears.
 */
import { appendFile, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { parseVassalIni } from '../tasks/index.ts';
import { loadStandInApp } from './app.ts';

/** A running stand-in emperor; see {@link startStandInEmperor}. */
export interface StandInEmperor {
  /** Restarts after the first start: one per touch it noticed. */
  readonly reloads: number;
  /** Stops watching and the running instance (its socket stops answering). Safe to call twice. */
  close(): Promise<void>;
}

/** Poll interval. Any touch changes mtime at the filesystem's precision, so a quick poll sees each one. */
const POLL_MS = 200;

/**
 * Starts the vassal described by the ini at `vassal` now (a first deploy
 * left it running), then restarts it whenever the ini's mtime changes. It
 * honours the ini's `chdir`, `http-socket` (a unix socket path) and `logto`.
 *
 * @example
 * const emperor = await startStandInEmperor('/tmp/x/home/demo/vassal/demo.ini');
 * // touch the ini: the log gets "*** Starting uWSGI (demo stand-in) ***", the socket a fresh server
 * await emperor.close();
 */
export async function startStandInEmperor(vassal: string): Promise<StandInEmperor> {
  let server: http.Server | undefined;
  let log: string | undefined;
  let reloads = 0;
  let closed = false;

  const write = async (lines: string[]): Promise<void> => {
    if (log) await appendFile(log, lines.map((line) => `${line}\n`).join(''));
  };

  const stop = async (): Promise<void> => {
    const running = server;
    server = undefined;
    if (!running) return;
    // Kept-alive connections would hold close() open; the old instance must really be gone.
    running.closeAllConnections();
    await new Promise<void>((resolve) => running.close(() => resolve()));
  };

  const start = async (): Promise<void> => {
    const text = await readFile(vassal, 'utf8');
    const ini = parseVassalIni(text, vassal);
    const chdir = /^\s*chdir\s*=\s*(.+?)\s*$/m.exec(text)?.[1];
    log = ini.log;
    await stop();
    await write(['*** Starting uWSGI (demo stand-in) ***', 'deployfile demo: a Node http server inside the demo process stands in for uWSGI and the Django app']);
    if (!chdir || ini.socket?.protocol !== 'http' || !ini.socket.address.includes('/')) {
      // Written so touchVassalIni shows why, as it would show uWSGI's own complaint.
      await write([`unable to load app 0: the demo stand-in needs chdir and an http-socket on a unix path in ${vassal}`]);
      return;
    }
    const app = await loadStandInApp(chdir);
    const next = http.createServer(app.handle);
    const socket = ini.socket.address;
    // A socket file left by a killed run would make listen fail with EADDRINUSE.
    await rm(socket, { force: true });
    try {
      await new Promise<void>((resolve, reject) => {
        next.once('error', reject);
        next.listen(socket, () => resolve());
      });
    } catch (error) {
      // The words uWSGI uses, so touchVassalIni recognises the failure and shows this line.
      await write([`bind(): ${error instanceof Error ? error.message : String(error)} [${socket}]`]);
      return;
    }
    server = next;
    await write([`chdir() to ${chdir}`, `revision ${app.revision}`, `http socket bound to UNIX address ${socket}`, 'ready: serving / and /revision']);
  };

  await start();
  let mtime = (await stat(vassal)).mtimeMs;
  let busy: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (busy || closed) return;
    busy = (async () => {
      const now = (await stat(vassal).catch(() => undefined))?.mtimeMs;
      if (now === undefined || now === mtime) return;
      mtime = now;
      reloads++;
      await write(['deployfile demo: the vassal ini was touched; restarting (a real emperor reloads the vassal)']);
      await start();
    })()
      .catch(() => {
        // A failed restart leaves no instance; touchVassalIni then reports that the app did not answer.
      })
      .finally(() => (busy = undefined));
  }, POLL_MS);
  // The demo closes the emperor itself; the timer alone must not keep Node running.
  timer.unref();

  return {
    get reloads() {
      return reloads;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await busy;
      await stop();
      await write(['deployfile demo: the demo ended, so its stand-in emperor and this instance stopped']).catch(() => {});
    },
  };
}
