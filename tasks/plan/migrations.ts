/**
 * The Django migrations a deploy would bring, read from the files that differ
 * between the served revision and the one a deploy would ship (`git diff
 * --name-status`): a migration file the new revision adds is one `migrate`
 * would apply. Read from git on the operator's machine, so it needs nothing
 * of the server's database; `./manage.py migrate --plan` there would also
 * list migrations left unapplied by earlier deploys.
 */

/** A migration the new revision adds. */
export interface PlannedMigration {
  /** The Django app label, as the directory holding `migrations/` names it. */
  app: string;
  /** The migration's name, without `.py`. */
  name: string;
  /** The file, relative to the repository. */
  path: string;
  /** Why `migrate <app> <previous>` could not undo it, when it could not. */
  irreversible?: string;
}

const MIGRATION_FILE = /(?:^|\/)([^/]+)\/migrations\/(\d{4}[^/]*)\.py$/;

/**
 * The added migration files among `git diff --name-status` lines (A, and the
 * new side of R and C).
 *
 * @example
 * addedMigrations('A\tpages/migrations/0002_page_slug.py\nM\tpages/views.py')
 * // [{ app: 'pages', name: '0002_page_slug', path: 'pages/migrations/0002_page_slug.py' }]
 */
export function addedMigrations(nameStatus: string): PlannedMigration[] {
  const found: PlannedMigration[] = [];
  for (const line of nameStatus.split('\n')) {
    const fields = line.split('\t');
    const status = fields[0]?.[0];
    const path = status === 'R' || status === 'C' ? fields[2] : status === 'A' ? fields[1] : undefined;
    const match = path ? MIGRATION_FILE.exec(path) : null;
    if (path && match) found.push({ app: match[1]!, name: match[2]!, path });
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

/** The argument text of each `name(` call in `source`, to the matching parenthesis (strings respected). */
function callArguments(source: string, name: string): string[] {
  const calls: string[] = [];
  const re = new RegExp(`\\b${name}\\s*\\(`, 'g');
  for (let m = re.exec(source); m; m = re.exec(source)) {
    let depth = 1;
    let i = re.lastIndex;
    let quote: string | undefined;
    for (; i < source.length && depth > 0; i++) {
      const ch = source[i]!;
      if (quote) {
        if (ch === '\\') i++;
        else if (source.startsWith(quote, i)) {
          i += quote.length - 1;
          quote = undefined;
        }
      } else if (ch === '"' || ch === "'") quote = source.startsWith(ch.repeat(3), i) ? ch.repeat(3) : ch;
      else if (ch === '(' || ch === '[' || ch === '{') depth++;
      else if (ch === ')' || ch === ']' || ch === '}') depth--;
    }
    calls.push(source.slice(re.lastIndex, i - 1));
  }
  return calls;
}

/** Splits an argument list at its top-level commas. */
function topLevelArguments(args: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  let quote: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const ch = args[i]!;
    if (quote) {
      if (ch === '\\') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if ('([{'.includes(ch)) depth++;
    else if (')]}'.includes(ch)) depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(args.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(args.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/**
 * Why a migration cannot be reversed, or undefined: a `RunPython` without
 * `reverse_code` (or a second argument), a `RunSQL` without `reverse_sql`.
 * Django refuses to unapply those ("... is not reversible"), so rolling the
 * code back would leave the database ahead of it.
 *
 * @example
 * irreversibleReason('migrations.RunPython(fill_slugs)') // 'RunPython without reverse_code'
 */
export function irreversibleReason(source: string): string | undefined {
  for (const [op, reverse] of [['RunPython', 'reverse_code'], ['RunSQL', 'reverse_sql']] as const) {
    for (const args of callArguments(source, op)) {
      const parts = topLevelArguments(args);
      const positional = parts.filter((p) => !/^[A-Za-z_]\w*\s*=/.test(p));
      const given = parts.find((p) => new RegExp(`^${reverse}\\s*=`).test(p));
      const reversible = positional.length >= 2 || (given !== undefined && !/=\s*None$/.test(given));
      if (!reversible) return `${op} without ${reverse}`;
    }
  }
  return undefined;
}
