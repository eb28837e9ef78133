/**
 * "Did you mean" for every name a user types: sites, groups, tasks, settings.
 * Its own file, apart from the zod schema, so the commands that only suggest
 * (task and site selection) never load zod.
 */

/** The closest of `candidates` to `word`, or undefined when none is close. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = levenshtein(word.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * Edit distance, for "did you mean" suggestions. Hand-written: `leven` is not
 * in node_modules, and a dependency for fifteen lines that run only on a typo
 * is not worth it.
 *
 * @example
 * levenshtein('deplyo', 'deploy') // => 2
 */
export function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min((row[j] as number) + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}
