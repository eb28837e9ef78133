import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the key blob's digest. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** How known_hosts names a host: bare on port 22, `[host]:port` otherwise. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export type HostKeyVerdict =
  | { status: 'match'; file: string; line: number }
  | { status: 'changed'; file: string; line: number; expected: string; actual: string }
  | { status: 'unknown'; actual: string };

/**
 * Check a server key against plain known_hosts files. (Hashed entries,
 * markers and recording new keys are the SSH issue's work; unknown keys are
 * refused here, never accepted.)
 */
export function checkHostKey(files: readonly string[], host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const name = hostPattern(host, port);
  const actual = fingerprint(keyBlob);
  let changed: HostKeyVerdict | undefined;
  for (const file of files) {
    if (!existsSync(file)) continue;
    const lines = readFileSync(file, 'utf8').split('\n');
    for (const [i, text] of lines.entries()) {
      const fields = text.trim().split(/\s+/);
      if (fields.length < 3 || fields[0]?.startsWith('#') || fields[0]?.startsWith('@')) continue;
      const [hosts, , base64] = fields as [string, string, string];
      if (!hosts.split(',').includes(name)) continue;
      const blob = Buffer.from(base64, 'base64');
      if (blob.equals(keyBlob)) return { status: 'match', file, line: i + 1 };
      changed ??= { status: 'changed', file, line: i + 1, expected: fingerprint(blob), actual };
    }
  }
  return changed ?? { status: 'unknown', actual };
}
