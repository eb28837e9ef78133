import { sh, task, type TaskDefinition } from '../../src/index.ts';
import { readReleases, releasePaths, type ReleaseOptions } from './layout.ts';

/**
 * List the site's releases from the record, oldest first: id, revision,
 * state (current, healthy, bad, rolled-back, built), when and by whom,
 * virtualenv, disk use. Read-only: takes no lock.
 *
 * @example
 * deploy run releases -s shop
 */
export function releases(options: ReleaseOptions = {}): TaskDefinition {
  return task({
    description: "List the site's releases: state, revision, virtualenv, disk use",
    lock: false,
    run: async (c) => {
      const paths = releasePaths(c, options);
      const states = (await readReleases(c, paths)).filter((r) => r.state !== 'removed');
      if (states.length === 0) {
        c.log(`no releases recorded in ~/${paths.record} (layout: 'releases' starts them at the next deploy)`);
        return;
      }
      const dirs = states.map((r) => `${paths.releasesDir}/${r.id}`);
      const du = c.dryRun ? '' : (await c.warnOnly().run(sh`du -sk ${dirs} 2>/dev/null`, { quiet: true })).stdout;
      const kib = new Map(du.split('\n').map((line) => line.split('\t')).filter((p) => p.length === 2).map(([k, dir]) => [dir as string, Number(k)]));
      const rows = states.map((r) => [
        r.id,
        r.revision.slice(0, 12),
        r.state,
        r.builtAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
        r.builtBy ?? '',
        r.venv.slice(r.venv.lastIndexOf('/') + 1),
        kib.has(`${paths.releasesDir}/${r.id}`) ? `${Math.ceil((kib.get(`${paths.releasesDir}/${r.id}`) as number) / 1024)} MiB` : '?',
      ]);
      const header = ['release', 'revision', 'state', 'built', 'by', 'virtualenv', 'disk'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
      const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i] as number)).join('  ').trimEnd();
      // Why a release is bad reads better under the table than in a column.
      const reasons = states.filter((r) => r.reason).map((r) => `${r.id} is bad: ${r.reason}`);
      c.log([line(header), ...rows.map(line), ...reasons].join('\n'));
    },
  });
}
