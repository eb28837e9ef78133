import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Deployfiles that passed validation before, remembered by a fingerprint of
 * what they export, so that the next start skips loading zod (about a third
 * of `deploy list`). A fingerprint writes the exported value out exactly as
 * the schema can see it: every own property with its type, functions only as
 * "a function" since the schema asks no more of them. What cannot be written
 * out exactly (a cycle, a getter, a non-enumerable or symbol key, a class
 * instance such as a Date or a Map) is never remembered: such a deployfile is
 * validated on every start, as before.
 */

/** The exported value as text, or undefined when it cannot be written out exactly. */
export function fingerprint(value: unknown, depth = 0, path: object[] = []): string | undefined {
  switch (typeof value) {
    case 'string':
      return `s${JSON.stringify(value)}`;
    case 'number':
      return `n${Object.is(value, -0) ? '-0' : String(value)}`;
    case 'boolean':
      return `b${value}`;
    case 'undefined':
      return 'u';
    case 'bigint':
      return `i${value}`;
    case 'function':
      return 'f';
    case 'symbol':
      return undefined;
  }
  if (value === null) return 'N';
  const object = value as object;
  if (depth > 64 || path.includes(object)) return undefined;
  const proto = Object.getPrototypeOf(object);
  const kind = Array.isArray(object) ? 'A' : proto === Object.prototype ? 'O' : proto === null ? '0' : undefined;
  if (kind === undefined) return undefined;
  const parts: string[] = [];
  for (const key of Reflect.ownKeys(object)) {
    if (typeof key === 'symbol') return undefined;
    if (kind === 'A' && key === 'length') continue;
    const descriptor = Object.getOwnPropertyDescriptor(object, key);
    if (!descriptor || !descriptor.enumerable || !('value' in descriptor)) return undefined;
    const inner = fingerprint(descriptor.value, depth + 1, [...path, object]);
    if (inner === undefined) return undefined;
    parts.push(`${JSON.stringify(key)}:${inner}`);
  }
  return `${kind}{${parts.join(',')}}`;
}

/**
 * The name a valid deployfile is remembered by: its fingerprint together
 * with what validated it (`schemaIdentity`: the schema's source and zod's
 * version), so that a change to either forgets every earlier verdict.
 */
export function validationKey(exported: unknown, schemaIdentity: string): string | undefined {
  const text = fingerprint(exported);
  if (text === undefined) return undefined;
  return createHash('sha256').update(schemaIdentity).update('\0').update(text).digest('hex');
}

/** `$XDG_CACHE_HOME/deployfile/valid`, else `~/.cache/deployfile/valid`: one user's, never shared. */
export function validatedDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'deployfile', 'valid');
}

export function knownValid(key: string, dir = validatedDir()): boolean {
  return existsSync(join(dir, key));
}

/** Entries kept; each edit of a deployfile adds one, so the oldest go past this. */
const KEEP = 200;

/** Remember a valid deployfile. A cache that cannot be written only costs the next start its speed, so errors are ignored. */
export function rememberValid(key: string, dir = validatedDir()): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, key), '');
    const names = readdirSync(dir);
    if (names.length <= KEEP) return;
    const byAge = names.map((name) => ({ name, mtime: statSync(join(dir, name)).mtimeMs })).sort((a, b) => a.mtime - b.mtime);
    for (const { name } of byAge.slice(0, names.length - KEEP)) rmSync(join(dir, name), { force: true });
  } catch {
    // read-only home, full disk: validated again next time
  }
}
