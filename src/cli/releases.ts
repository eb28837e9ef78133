import { EXIT } from '../core/errors.ts';
import { runScript } from '../connection/scripts.ts';
import { withSite } from './site-connection.ts';

/** Where the task library's releases layout keeps its record, relative to the site user's home (tasks/releases/record.ts). */
const RECORD_PATH = '.deployfile/releases.jsonl';

/**
 * `deploy releases <site> --json`: the site's release record as stored on
 * the server, one JSON event per line (built, activated, verified, bad,
 * rolled-back, removed, migrations), oldest first, like `deploy history
 * --json`. Without --json the `releases` task draws the table.
 */
export async function releasesJsonCommand(siteName: string, flags: { file?: string }, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  return withSite(siteName, flags, async (_site, transport) => {
    const { exitCode, stdout, stderr } = await runScript(transport, `f="$HOME"/${RECORD_PATH}; if [ -f "$f" ]; then cat "$f"; fi`, { label: `read ~/${RECORD_PATH}` });
    if (exitCode !== 0) throw new Error(`could not read ~/${RECORD_PATH} on ${transport.target}: ${stderr.trim() || `exit code ${exitCode}`}`);
    for (const line of stdout.split('\n')) {
      // A half-written last line (a power cut) is not an event.
      try {
        if (line.trim().startsWith('{')) out.write(`${JSON.stringify(JSON.parse(line))}\n`);
      } catch {
        // skipped, as the releases task skips it
      }
    }
    return EXIT.ok;
  });
}
