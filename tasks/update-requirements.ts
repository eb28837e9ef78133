import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { task, type CommandInput, type TaskDefinition } from '../src/index.ts';

/** Options of {@link updateRequirements}. */
export interface UpdateRequirementsOptions {
  /** Packages to leave out (development tools, say); case and `-`/`_`/`.` don't matter. */
  exclude?: string[];
  /** The freeze command; default `pip freeze`. E.g. `sh\`${venv}/bin/python -m pip freeze\``. */
  freezeCommand?: CommandInput;
  /** The file written, relative to `localDir`. Default `REQUIREMENTS`. */
  file?: string;
  /** The local checkout; default the current directory. */
  localDir?: string;
}

/** A package name as pip compares them (PEP 503): lower case, runs of `-`, `_`, `.` as one `-`. */
export function normalizePackageName(name: string): string {
  return name.trim().toLowerCase().replace(/[-_.]+/g, '-');
}

/** The package a `pip freeze` line pins, or undefined for comments and options. */
export function frozenPackageName(line: string): string | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  // Editable installs name themselves in the URL fragment: -e git+https://...#egg=name
  const egg = /[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(text);
  if (text.startsWith('-')) return egg?.[1];
  return /^[A-Za-z0-9][A-Za-z0-9._-]*/.exec(text)?.[0];
}

/**
 * Keep the lines of `pip freeze` output whose package is not excluded.
 *
 * @example
 * filterFreeze('Django==4.2\ndjango_debug_toolbar==4.0\n', ['Django-Debug-Toolbar']) // => 'Django==4.2\n'
 */
export function filterFreeze(output: string, exclude: readonly string[]): string {
  const excluded = new Set(exclude.map(normalizePackageName));
  const kept = output.split(/\r?\n/).filter((line) => {
    if (line.trim() === '') return false;
    const name = frozenPackageName(line);
    return name === undefined || !excluded.has(normalizePackageName(name));
  });
  return kept.length > 0 ? `${kept.join('\n')}\n` : '';
}

/**
 * Write `pip freeze` of the local environment to `REQUIREMENTS`, leaving out
 * the packages named in `exclude`. Runs once, locally.
 *
 * @example
 * tasks: { updateRequirements: updateRequirements({ exclude: ['django-debug-toolbar', 'ipython'] }) }
 */
export function updateRequirements(options: UpdateRequirementsOptions = {}): TaskDefinition {
  const file = options.file ?? 'REQUIREMENTS';
  return task({
    description: `Write pip freeze (minus excluded packages) to ${file}`,
    once: true,
    run: async (c) => {
      const here = options.localDir ? c.cd(options.localDir) : c;
      const frozen = await here.local(options.freezeCommand ?? 'pip freeze', { quiet: true });
      const target = resolve(options.localDir ?? '.', file);
      if (c.dryRun) {
        c.log(`would write the frozen packages to ${target}`);
        return;
      }
      const text = filterFreeze(frozen.stdout, options.exclude ?? []);
      await writeFile(target, text);
      const count = text === '' ? 0 : text.trimEnd().split('\n').length;
      c.log(`wrote ${count} requirement${count === 1 ? '' : 's'} to ${target}`);
    },
  });
}
