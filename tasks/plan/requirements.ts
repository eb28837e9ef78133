/**
 * What a deploy's `pip install -r` would change, read from two requirements
 * files: the copy the last successful install left on the server, and the
 * file of the revision a deploy would ship. One line per requirement; a name
 * is compared as pip compares it (PEP 503: case, `-`, `_` and `.` alike).
 * Options (`-r`, `--index-url`) are compared as whole lines.
 */

/** One requirement whose line differs between the two files. */
export interface RequirementChange {
  /** The name as the new file writes it (the old one's when removed). */
  name: string;
  /** The line in the installed file, absent when the requirement is new. */
  from?: string;
  /** The line in the new file, absent when it was removed. */
  to?: string;
}

/** `added`, `removed`, `changed`: the three kinds of {@link RequirementChange}. */
export interface RequirementsDiff {
  added: RequirementChange[];
  removed: RequirementChange[];
  changed: RequirementChange[];
}

/** The name part of a requirement line, normalized; the whole line for options such as `-r base.txt`. */
export function requirementKey(line: string): { key: string; name: string } {
  if (line.startsWith('-')) return { key: line, name: line };
  // `name[extra]==1.0 ; marker`, `name @ url`, `name>=1,<2`: the name ends where any of these begins.
  const name = /^[A-Za-z0-9][A-Za-z0-9._-]*/.exec(line)?.[0] ?? line;
  return { key: name.toLowerCase().replace(/[-_.]+/g, '-'), name };
}

/** The requirement lines of a file: comments, blank lines and line continuations handled as pip does. */
export function requirementLines(text: string): string[] {
  return text
    .replace(/\\\r?\n/g, '')
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter((line) => line !== '');
}

/**
 * @example
 * diffRequirements('Django==4.2\nrequests==2.31\n', 'django==5.0\nsentry-sdk\n')
 * // { added: [{ name: 'sentry-sdk', to: 'sentry-sdk' }], removed: [{ name: 'requests', from: 'requests==2.31' }],
 * //   changed: [{ name: 'django', from: 'Django==4.2', to: 'django==5.0' }] }
 */
export function diffRequirements(installed: string, next: string): RequirementsDiff {
  const index = (text: string): Map<string, { name: string; line: string }> => {
    const map = new Map<string, { name: string; line: string }>();
    for (const line of requirementLines(text)) {
      const { key, name } = requirementKey(line);
      map.set(key, { name, line });
    }
    return map;
  };
  // What follows the name (extras, versions, markers, URL), spacing aside: `Zope_Interface==6` is `zope.interface==6`.
  const spec = (r: { name: string; line: string }): string => r.line.slice(r.name.length).replace(/\s+/g, '');
  const before = index(installed);
  const after = index(next);
  const diff: RequirementsDiff = { added: [], removed: [], changed: [] };
  for (const [key, now] of after) {
    const was = before.get(key);
    if (!was) diff.added.push({ name: now.name, to: now.line });
    else if (spec(was) !== spec(now)) diff.changed.push({ name: now.name, from: was.line, to: now.line });
  }
  for (const [key, was] of before) if (!after.has(key)) diff.removed.push({ name: was.name, from: was.line });
  return diff;
}

/** One line for a view, e.g. `+sentry-sdk, -requests, Django==4.2 -> django==5.0`. */
export function describeRequirementsDiff(diff: RequirementsDiff): string {
  const parts = [
    ...diff.added.map((c) => `+${c.to}`),
    ...diff.removed.map((c) => `-${c.from}`),
    ...diff.changed.map((c) => `${c.from} -> ${c.to}`),
  ];
  return parts.length > 0 ? parts.join(', ') : 'only comments, order or spacing differ';
}
