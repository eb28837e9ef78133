import { createHash } from 'node:crypto';
import { UsageError } from '../core/errors.ts';
import type { LoadedDeployfile, ResolvedSite } from '../config/load.ts';
import { suggest } from '../config/suggest.ts';

/** What `--site`, `--exclude` and `--shard` asked for; every part optional. */
export interface Selection {
  /**
   * Site names, group names or glob patterns (`shop-*`); undefined: every
   * site. An empty list is a UsageError, never "every site": it is what an
   * unset variable in `-s "$SITE"` becomes.
   */
  site?: readonly string[];
  /** Same forms as `site`, taken away afterwards. */
  exclude?: readonly string[];
  /** `--shard I/N`: keep the I-th (1-based) of N stable slices. */
  shard?: Shard;
}

/** One slice of N: `index` counts from 1, as `--shard 2/4` says it. */
export interface Shard {
  index: number;
  count: number;
}

/** Site and group names may not contain these, so a pattern is never mistaken for a name. */
const GLOB = /[*?[]/;

/**
 * A shell-style glob as a RegExp: `*` any run, `?` one character,
 * `[abc]`/`[a-z]`/`[!a]` one of a set. Matched against the whole name.
 *
 * @example globToRegExp('shop-*').test('shop-berlin') // true
 */
export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '*') out += '.*';
    else if (ch === '?') out += '.';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else out += ch.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

function catalogue(deployfile: LoadedDeployfile): string {
  const sites = deployfile.sites.map((site) => site.name);
  const groups = Object.entries(deployfile.groups).map(([name, members]) => `${name} (${members.join(', ')})`);
  return `Sites: ${sites.join(', ') || '(none)'}; groups: ${groups.join(', ') || '(none)'}`;
}

/** The site names one word of `--site`/`--exclude` stands for; throws a UsageError when it stands for none. */
function expandWord(deployfile: LoadedDeployfile, word: string, flag: string): Set<string> {
  const names = deployfile.sites.map((site) => site.name);
  const out = new Set<string>();
  const expand = (name: string, seen: Set<string>): boolean => {
    if (names.includes(name)) {
      out.add(name);
      return true;
    }
    const group = deployfile.groups[name];
    if (!group) return false;
    if (!seen.has(name)) {
      seen.add(name);
      for (const member of group) expand(member, seen);
    }
    return true;
  };
  if (GLOB.test(word)) {
    const re = globToRegExp(word);
    // A pattern can name groups too: `--site 'eu-*'` with groups eu-web, eu-shop.
    for (const name of names) if (re.test(name)) out.add(name);
    for (const group of Object.keys(deployfile.groups)) if (re.test(group)) expand(group, new Set());
    if (out.size === 0) throw new UsageError(`${flag} '${word}' matches no site or group. ${catalogue(deployfile)}`);
    return out;
  }
  if (!expand(word, new Set())) {
    const hint = suggest(word, [...names, ...Object.keys(deployfile.groups)]);
    throw new UsageError(`${flag}: unknown site "${word}"${hint ? ` (did you mean "${hint}"?)` : ''}. ${catalogue(deployfile)}`);
  }
  return out;
}

/**
 * A stable number for a site name: the first 32 bits of its SHA-256. The
 * same name gives the same number on every machine and in every version,
 * so a site stays in its shard however the fleet around it changes.
 */
export function siteHash(name: string): number {
  return createHash('sha256').update(name, 'utf8').digest().readUInt32BE(0);
}

/** Whether a site belongs to the slice `shard` (1-based). */
export function inShard(name: string, shard: Shard): boolean {
  return siteHash(name) % shard.count === shard.index - 1;
}

/**
 * Parses `I/N` (`--shard 2/4`, `DEPLOY_SHARD`): 1 <= I <= N.
 *
 * @example parseShard('2/4') // { index: 2, count: 4 }
 */
export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || index < 1 || index > count) {
    throw new UsageError(`"${text}": expected I/N with 1 <= I <= N, e.g. 2/4 for the second of four slices`);
  }
  return { index, count };
}

/**
 * The sites a run covers, in deployfile order: those named by `site`
 * (names, groups, globs; all sites when undefined, an error when empty), minus `exclude`, then the
 * shard's slice. A word that matches nothing, or a selection left empty by
 * `exclude`, is a UsageError (exit 2) listing the sites and groups. An empty
 * shard is not an error: a CI matrix may have more runners than sites.
 *
 * @example selectSites(deployfile, { site: ['shop-*', 'web'], exclude: ['shop-test'], shard: { index: 1, count: 2 } })
 */
export function selectSites(deployfile: LoadedDeployfile, selection: Selection | readonly string[] | undefined = {}): ResolvedSite[] {
  const { site, exclude, shard } = Array.isArray(selection) ? { site: selection as readonly string[], exclude: undefined, shard: undefined } : (selection as Selection);
  let wanted: Set<string>;
  if (!site) wanted = new Set(deployfile.sites.map((s) => s.name));
  else if (site.length === 0) throw new UsageError(`--site names no site: name sites, groups or globs, or leave --site out to run on every site. ${catalogue(deployfile)}`);
  else {
    wanted = new Set();
    for (const word of site) for (const name of expandWord(deployfile, word, '--site')) wanted.add(name);
  }
  if (exclude && exclude.length > 0) {
    for (const word of exclude) for (const name of expandWord(deployfile, word, '--exclude')) wanted.delete(name);
    if (wanted.size === 0) throw new UsageError(`--exclude ${exclude.join(',')} leaves no site to run on. ${catalogue(deployfile)}`);
  }
  const chosen = deployfile.sites.filter((s) => wanted.has(s.name));
  return shard ? chosen.filter((s) => inShard(s.name, shard)) : chosen;
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
