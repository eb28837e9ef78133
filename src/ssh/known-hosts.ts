/**
 * OpenSSH's known_hosts files, read and written the way ssh(1) does
 * (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): plain and hashed (`|1|salt|hash`)
 * host names, `[host]:port` for other ports, `*`/`?`/`!` patterns, several
 * keys per host, and the `@revoked` and `@cert-authority` markers.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the key blob's digest. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * How known_hosts names a host: bare on port 22, `[host]:port` otherwise.
 *
 * @example hostPattern('127.0.0.1', 2222) // '[127.0.0.1]:2222'
 */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...), or undefined if the blob is malformed. */
export function keyTypeOf(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > keyBlob.length) return undefined;
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

/** The short name OpenSSH prints before "key fingerprint is": ED25519, ECDSA, RSA, DSA. */
export function keyTypeLabel(keyType: string | undefined): string {
  if (!keyType) return 'unknown';
  if (keyType === 'ssh-ed25519') return 'ED25519';
  if (keyType.startsWith('ecdsa-')) return 'ECDSA';
  if (keyType === 'ssh-rsa') return 'RSA';
  if (keyType === 'ssh-dss') return 'DSA';
  if (keyType.startsWith('sk-ssh-ed25519')) return 'ED25519-SK';
  if (keyType.startsWith('sk-ecdsa')) return 'ECDSA-SK';
  return keyType;
}

/**
 * The host key algorithms that use a key of this type: what to offer first
 * so the server presents the key we already know (OpenSSH's
 * order_hostkeyalgs), instead of one we would then call "changed".
 */
export function algorithmsForKeyType(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [keyType];
}

/** One line of a known_hosts file that names keys (comments and blank lines are skipped). */
export interface KnownHostsEntry {
  file: string;
  /** 1-based, as editors and `ssh-keygen -R` messages count. */
  line: number;
  marker: 'cert-authority' | 'revoked' | null;
  /** The hosts field as written: a pattern list, or one `|1|salt|hash`. */
  hosts: string;
  /** The key type field (`ssh-ed25519`, ...). */
  keyType: string;
  keyBlob: Buffer;
}

/** What could not be read, with where; reported, never fatal, as OpenSSH does. */
export interface KnownHostsProblem {
  file: string;
  line: number;
  message: string;
}

/**
 * Parse known_hosts text. Malformed lines are returned as problems and
 * otherwise ignored, as ssh(1) ignores them.
 *
 * @example parseKnownHosts('[127.0.0.1]:2222 ssh-ed25519 AAAA...\n', '/home/me/.ssh/known_hosts')
 */
export function parseKnownHosts(text: string, file: string): { entries: KnownHostsEntry[]; problems: KnownHostsProblem[] } {
  const entries: KnownHostsEntry[] = [];
  const problems: KnownHostsProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostsEntry['marker'] = null;
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift();
      if (name === '@cert-authority') marker = 'cert-authority';
      else if (name === '@revoked') marker = 'revoked';
      else {
        problems.push({ file, line: i + 1, message: `unknown marker ${name}` });
        return;
      }
    }
    const [hosts, keyType, base64] = fields;
    if (!hosts || !keyType || !base64) {
      problems.push({ file, line: i + 1, message: 'expected: [marker] hosts keytype key [comment]' });
      return;
    }
    const keyBlob = Buffer.from(base64, 'base64');
    if (keyBlob.length === 0 || keyTypeOf(keyBlob) === undefined) {
      problems.push({ file, line: i + 1, message: 'the key is not valid base64' });
      return;
    }
    entries.push({ file, line: i + 1, marker, hosts, keyType, keyBlob });
  });
  return { entries, problems };
}

/**
 * A hashed host name as `HashKnownHosts yes` writes it:
 * `|1|` base64(salt) `|` base64(HMAC-SHA1(salt, name)).
 *
 * @example hashHostName('[127.0.0.1]:2222') // '|1|q2v...=|Zk1...='
 */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

function matchesHashed(field: string, name: string): boolean {
  const parts = field.split('|');
  // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1' || !parts[2] || !parts[3]) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const expected = Buffer.from(parts[3], 'base64');
  const actual = createHmac('sha1', salt).update(name).digest();
  return expected.length === actual.length && expected.equals(actual);
}

/** OpenSSH's match_pattern: `*` any run of characters, `?` exactly one. */
export function matchPattern(pattern: string, text: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${regex}$`, 's').test(text);
}

/**
 * Whether a hosts field names this host. `name` is already in known_hosts
 * form (`host` or `[host]:port`); names compare case-insensitively, and a
 * matching `!pattern` rules the line out whatever else matches.
 */
export function hostsFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return matchesHashed(field, name);
  const lower = name.toLowerCase();
  let matched = false;
  for (const pattern of field.toLowerCase().split(',')) {
    if (pattern.startsWith('!')) {
      if (matchPattern(pattern.slice(1), lower)) return false;
    } else if (matchPattern(pattern, lower)) {
      matched = true;
    }
  }
  return matched;
}

/** Where a key for a host is recorded. */
export interface KnownKeyRef {
  file: string;
  line: number;
  keyType: string;
  fingerprint: string;
}

export type HostKeyVerdict =
  | { status: 'match'; file: string; line: number }
  /** The key is listed as `@revoked`: refused whatever else says. */
  | { status: 'revoked'; file: string; line: number; actual: string; keyType: string }
  /** A different key of the same type is recorded for this host: refused, never asked. */
  | { status: 'changed'; file: string; line: number; expected: string; actual: string; keyType: string; known: KnownKeyRef[] }
  /**
   * No key of this type is recorded. `otherKeys` lists keys of other types
   * recorded for the host (suspicious: the server no longer offers them),
   * `certAuthorities` the `@cert-authority` lines that cover it.
   */
  | { status: 'unknown'; actual: string; keyType: string; otherKeys: KnownKeyRef[]; certAuthorities: KnownKeyRef[] };

/** Entries of these files (missing files are skipped); read afresh each call, so keys recorded meanwhile count. */
export function readKnownHosts(files: readonly string[]): { entries: KnownHostsEntry[]; problems: KnownHostsProblem[] } {
  const entries: KnownHostsEntry[] = [];
  const problems: KnownHostsProblem[] = [];
  for (const file of files) {
    let text: string;
    try {
      if (!existsSync(file) || !statSync(file).isFile()) continue;
      text = readFileSync(file, 'utf8');
    } catch (error) {
      problems.push({ file, line: 0, message: `cannot read: ${(error as Error).message}` });
      continue;
    }
    const parsed = parseKnownHosts(text, file);
    entries.push(...parsed.entries);
    problems.push(...parsed.problems);
  }
  return { entries, problems };
}

/** The key types recorded (as plain keys, not CA or revoked) for a host: which host key algorithms to prefer. */
export function knownKeyTypes(files: readonly string[], name: string): string[] {
  const types: string[] = [];
  for (const entry of readKnownHosts(files).entries) {
    if (entry.marker !== null || !hostsFieldMatches(entry.hosts, name)) continue;
    const type = keyTypeOf(entry.keyBlob);
    if (type && !types.includes(type)) types.push(type);
  }
  return types;
}

/**
 * Check a server key against known_hosts files, as ssh(1) does: a revoked
 * key is refused; any line with this exact key accepts it; a line with
 * another key of the same type means the key changed.
 *
 * @param name the host as known_hosts names it: `hostPattern(host, port)`,
 *   or OpenSSH's HostKeyAlias.
 */
export function checkHostKeyByName(files: readonly string[], name: string, keyBlob: Buffer): HostKeyVerdict {
  const actual = fingerprint(keyBlob);
  const keyType = keyTypeOf(keyBlob) ?? 'unknown';
  const { entries } = readKnownHosts(files);

  for (const entry of entries) {
    if (entry.marker === 'revoked' && entry.keyBlob.equals(keyBlob) && hostsFieldMatches(entry.hosts, name)) {
      return { status: 'revoked', file: entry.file, line: entry.line, actual, keyType };
    }
  }
  const sameType: KnownKeyRef[] = [];
  const otherKeys: KnownKeyRef[] = [];
  const certAuthorities: KnownKeyRef[] = [];
  for (const entry of entries) {
    if (entry.marker === 'revoked' || !hostsFieldMatches(entry.hosts, name)) continue;
    const ref: KnownKeyRef = { file: entry.file, line: entry.line, keyType: keyTypeOf(entry.keyBlob) ?? entry.keyType, fingerprint: fingerprint(entry.keyBlob) };
    if (entry.marker === 'cert-authority') {
      certAuthorities.push(ref);
      continue;
    }
    if (entry.keyBlob.equals(keyBlob)) return { status: 'match', file: entry.file, line: entry.line };
    (ref.keyType === keyType ? sameType : otherKeys).push(ref);
  }
  const first = sameType[0];
  if (first) return { status: 'changed', file: first.file, line: first.line, expected: first.fingerprint, actual, keyType, known: sameType };
  return { status: 'unknown', actual, keyType, otherKeys, certAuthorities };
}

/**
 * Check a server key for `host` on `port` (see checkHostKeyByName).
 *
 * @example checkHostKey(['/home/me/.ssh/known_hosts'], 'web1.example.com', 22, blob)
 */
export function checkHostKey(files: readonly string[], host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  return checkHostKeyByName(files, hostPattern(host, port), keyBlob);
}

/** The known_hosts line ssh(1) would add for this host and key. */
export function knownHostsLine(name: string, keyBlob: Buffer, options: { hash?: boolean } = {}): string {
  const type = keyTypeOf(keyBlob) ?? 'unknown';
  return `${options.hash ? hashHostName(name) : name} ${type} ${keyBlob.toString('base64')}`;
}

/**
 * Record a host key as ssh(1) does on "yes" or with accept-new: appended to
 * the user's known_hosts, creating its directory (0700, like ~/.ssh) when
 * missing. Returns the line number written.
 */
export function appendKnownHost(file: string, name: string, keyBlob: Buffer, options: { hash?: boolean } = {}): number {
  const dir = dirname(file);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  let before = '';
  if (existsSync(file)) before = readFileSync(file, 'utf8');
  const separator = before === '' || before.endsWith('\n') ? '' : '\n';
  appendFileSync(file, `${separator}${knownHostsLine(name, keyBlob, options)}\n`, { mode: 0o644 });
  return (before + separator).split('\n').length;
}
