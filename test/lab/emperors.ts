import fs from 'node:fs';
import path from 'node:path';
import * as lab from './lab.ts';

/**
 * Fails when a uWSGI emperor other than this lab's watches the vassal
 * directory: it would run these sites' vassals too, on the same sockets, and
 * what nginx serves could come from either. `own`: the emperor this test
 * started; before that, the one recorded in this lab (startEmperor replaces it).
 */
export function refuseOtherEmperors(own?: number): void {
  const ours = path.join(lab.labDir(), 'run') + path.sep;
  const others: string[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === own) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone
    }
    const at = argv.indexOf('--emperor');
    if (at < 0 || path.resolve(argv[at + 1] ?? '') !== lab.VASSAL_DIR) continue;
    // Our emperor's own children (a vassal between fork and exec still has the
    // emperor's command line; a busy machine makes that window long).
    if (own !== undefined && parentOf(Number(entry)) === own) continue;
    if (own === undefined && (argv[argv.indexOf('--pidfile') + 1] ?? '').startsWith(ours)) continue;
    others.push(`pid ${entry}: ${argv.join(' ').trim()}`);
  }
  if (others.length > 0) {
    throw new Error(
      `another uWSGI emperor watches ${lab.VASSAL_DIR} (${others.join('; ')}). It would run these sites' vassals too, on the same sockets, ` +
        "so what nginx serves could come from either. Stop it (DEPLOYFILE_LAB_DIR=<its lab> npx jiti test/lab/cli.ts down) and run again.",
    );
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parens: the fields resume after the last ')'.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * Reload a vassal as its site user would (touch its ini) and return once the
 * emperor has really reloaded it (its "reload the uwsgi instance" line), so
 * what the site serves next comes from the reloaded app. Waits out the
 * second of an earlier touch first: two touches within one second can
 * collapse into one reload.
 */
export async function reloadVassalAndWait(site: string, emperorLog: string, timeoutMs = 30_000): Promise<void> {
  const before = fs.statSync(emperorLog).size;
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await lab.touchVassal(site);
  const deadline = Date.now() + timeoutMs;
  const since = () => fs.readFileSync(emperorLog, 'utf8').slice(before);
  while (!since().includes(`reload the uwsgi instance ${site}.ini`)) {
    if (Date.now() > deadline) throw new Error(`the emperor did not reload ${site} within ${timeoutMs / 1000} s of the touch; its log since:\n${since()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
