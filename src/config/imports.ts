import { readFileSync } from 'node:fs';
import { DeployfileError } from '../core/errors.ts';
import { suggest } from './suggest.ts';

/** One name a deployfile imports from a deployfile entry point. */
export interface ImportedName {
  /** The exported name (before any `as`). */
  name: string;
  /** `deployfile`, `deployfile/tasks`, ... */
  from: string;
  /** 1-based line of the name in the file. */
  line: number;
}

const IMPORT = /import\s+(?:type\s+)?(?:[A-Za-z_$][\w$]*\s*,\s*)?\{([^}]*)\}\s*from\s*(['"])(deployfile(?:\/[\w-]+)?)\2/g;

/**
 * The names a deployfile imports from `deployfile` and its subpaths, with
 * their lines. A plain scan of `import { ... } from '...'`: enough for the
 * one-line check below, and it needs no TypeScript compiler at run time.
 *
 * @example
 * importedNames("import { defineDeployfile, runLocal as r } from 'deployfile';")
 * // => [{ name: 'defineDeployfile', from: 'deployfile', line: 1 }, { name: 'runLocal', from: 'deployfile', line: 1 }]
 */
export function importedNames(source: string): ImportedName[] {
  const names: ImportedName[] = [];
  for (const match of source.matchAll(IMPORT)) {
    const list = match[1] as string;
    const listStart = (match.index ?? 0) + match[0].indexOf('{') + 1;
    let offset = 0;
    for (const part of list.split(',')) {
      const spec = part.replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '').trim();
      const partStart = listStart + offset + part.search(/\S|$/);
      offset += part.length + 1;
      if (spec === '') continue;
      const name = spec.replace(/^type\s+/, '').split(/\s+as\s+/)[0]?.trim();
      if (!name) continue;
      names.push({ name, from: match[3] as string, line: source.slice(0, partStart).split('\n').length });
    }
  }
  return names;
}

/**
 * Every name an entry point's source declares as exported, types included
 * (`export type { A }`, `export { b, type C }`, `export interface D`):
 * names that exist only as types are not in the runtime module, yet
 * importing them is right.
 */
export function declaredExports(entrySource: string): Set<string> {
  const names = new Set<string>();
  for (const match of entrySource.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of (match[1] as string).split(',')) {
      const spec = part.trim().replace(/^type\s+/, '');
      const exported = spec.split(/\s+as\s+/).at(-1)?.trim();
      if (exported) names.add(exported);
    }
  }
  for (const match of entrySource.matchAll(/export\s+(?:declare\s+)?(?:async\s+)?(?:function\*?|const|let|var|class|interface|type|enum|abstract\s+class)\s+([A-Za-z_$][\w$]*)/g)) {
    names.add(match[1] as string);
  }
  return names;
}

/**
 * Refuse a deployfile importing a name its entry point does not export,
 * before it runs: otherwise the transpiled call fails mid-deploy, after
 * earlier commands ran ("(0 , _deployfile.runLocal) is not a function").
 * `entries` maps each checked specifier to its runtime exports and the text of its
 * source or declarations. Throws a DeployfileError naming file, line, the
 * closest export.
 */
export function checkImports(file: string, source: string, entries: Record<string, { runtime: readonly string[]; declared: Set<string> }>): void {
  const problems: string[] = [];
  for (const imported of importedNames(source)) {
    const entry = entries[imported.from];
    if (!entry) continue; // resolved the usual way, and an unknown one fails to load with the resolver's own message
    if (entry.runtime.includes(imported.name) || entry.declared.has(imported.name)) continue;
    const known = [...new Set([...entry.runtime, ...entry.declared])].filter((n) => n !== 'default').sort();
    const hint = suggest(imported.name, known);
    problems.push(
      `${file}:${imported.line}: '${imported.from}' has no export named ${imported.name}${hint ? ` (did you mean ${hint}?)` : ''}; it exports: ${known.join(', ')}`,
    );
  }
  if (problems.length > 0) throw new DeployfileError(problems.join('\n'), file);
}

/** The text of an entry point's declarations: the .d.ts beside a built .js, or the .ts source itself. */
export function entrySource(path: string): string {
  const candidates = path.endsWith('.js') ? [path.replace(/\.js$/, '.d.ts'), path] : [path];
  for (const candidate of candidates) {
    try {
      return readFileSync(candidate, 'utf8');
    } catch {
      // not there: the next one
    }
  }
  return '';
}
