import { UsageError } from '../core/errors.ts';
import type { LoadedDeployfile, ResolvedSite } from '../config/load.ts';
import { suggest } from '../config/schema.ts';

/**
 * The sites a run covers, in deployfile order: all of them, or those named
 * (directly or through a group) by `--site a,b,group`.
 */
export function selectSites(deployfile: LoadedDeployfile, names: readonly string[] | undefined): ResolvedSite[] {
  if (!names || names.length === 0) return deployfile.sites;
  const byName = new Map(deployfile.sites.map((site) => [site.name, site]));
  const wanted = new Set<string>();
  const expand = (name: string, seen: Set<string>): void => {
    if (byName.has(name)) {
      wanted.add(name);
      return;
    }
    const group = deployfile.groups[name];
    if (group && !seen.has(name)) {
      seen.add(name);
      for (const member of group) expand(member, seen);
      return;
    }
    const known = [...byName.keys(), ...Object.keys(deployfile.groups)];
    const hint = suggest(name, known);
    throw new UsageError(
      `unknown site "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}. Sites: ${[...byName.keys()].join(', ') || '(none)'}` +
        (Object.keys(deployfile.groups).length > 0 ? `; groups: ${Object.keys(deployfile.groups).join(', ')}` : ''),
    );
  };
  for (const name of names) expand(name, new Set());
  return deployfile.sites.filter((site) => wanted.has(site.name));
}

/** Fails with the known tasks and the closest match when a task name is unknown. */
export function checkTasks(deployfile: LoadedDeployfile, names: readonly string[]): void {
  const known = Object.keys(deployfile.tasks);
  for (const name of names) {
    if (known.includes(name)) continue;
    const hint = suggest(name, known);
    throw new UsageError(`unknown task "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}. Tasks: ${known.join(', ') || '(none)'}. See: deploy list`);
  }
}
