import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { utils } from 'ssh2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../demo/embedded-ssh/server.ts';
import {
  appendKnownHost,
  checkHostKey,
  checkHostKeyByName,
  fingerprint,
  hashHostName,
  hostPattern,
  hostsFieldMatches,
  keyTypeOf,
  knownKeyTypes,
  parseKnownHosts,
} from '../../src/ssh/known-hosts.ts';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const blobOf = (pubFile: string): Buffer => Buffer.from(readFileSync(join(FIXTURES, pubFile), 'utf8').split(' ')[1]!, 'base64');
const ED25519 = blobOf('host_ed25519.pub');
const ECDSA = blobOf('host_ecdsa.pub');
const newKey = (type: 'ed25519' | 'ecdsa' = 'ed25519'): Buffer => {
  // ssh2's own ed25519 keygen makes about 1 key in 256 unusable: generateKeyPair checks and retries.
  const parsed = utils.parseKey(type === 'ecdsa' ? utils.generateKeyPairSync('ecdsa', { bits: 256 }).public : generateKeyPair().publicKey);
  if (parsed instanceof Error) throw parsed;
  return parsed.getPublicSSH();
};
const line = (hosts: string, blob: Buffer, marker = ''): string => `${marker ? `${marker} ` : ''}${hosts} ${keyTypeOf(blob)} ${blob.toString('base64')}`;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'deployfile-kh-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

describe('fingerprints and names', () => {
  it('prints SHA256 fingerprints exactly as ssh-keygen -l does', () => {
    // From `ssh-keygen -lf` on the fixture keys.
    expect(fingerprint(ED25519)).toBe('SHA256:2jExbs7yXjRSkupz0fac/YMK9IB0Kw5vP26rehZcyyg');
    expect(fingerprint(ECDSA)).toBe('SHA256:RKwjq6TUGV+OOOkXCt9DEJsuzL0SfQHBWVfaO4rDNUk');
  });

  it('names port 22 bare and other ports as [host]:port', () => {
    expect(hostPattern('web1.example.com', 22)).toBe('web1.example.com');
    expect(hostPattern('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('reads the key type from the key blob', () => {
    expect(keyTypeOf(ED25519)).toBe('ssh-ed25519');
    expect(keyTypeOf(ECDSA)).toBe('ecdsa-sha2-nistp256');
    expect(keyTypeOf(Buffer.from('nonsense'))).toBeUndefined();
  });
});

describe('host patterns', () => {
  it('matches comma lists, wildcards and ? case-insensitively', () => {
    expect(hostsFieldMatches('web1.example.com,10.0.0.5', '10.0.0.5')).toBe(true);
    expect(hostsFieldMatches('*.example.com', 'WEB1.example.com')).toBe(true);
    expect(hostsFieldMatches('web?.example.com', 'web1.example.com')).toBe(true);
    expect(hostsFieldMatches('web?.example.com', 'web10.example.com')).toBe(false);
    expect(hostsFieldMatches('[127.0.0.1]:*', '[127.0.0.1]:2222')).toBe(true);
  });

  it('a matching !pattern rules the line out', () => {
    expect(hostsFieldMatches('*.example.com,!evil.example.com', 'evil.example.com')).toBe(false);
    expect(hostsFieldMatches('*.example.com,!evil.example.com', 'good.example.com')).toBe(true);
  });

  it('does not confuse port 22 with another port', () => {
    expect(hostsFieldMatches('web1.example.com', '[web1.example.com]:2222')).toBe(false);
    expect(hostsFieldMatches('[web1.example.com]:2222', 'web1.example.com')).toBe(false);
  });

  it('matches hashed names written by ssh-keygen -H, and only those', () => {
    const [first] = parseKnownHosts(readFileSync(join(FIXTURES, 'hashed_known_hosts'), 'utf8'), 'f').entries;
    expect(hostsFieldMatches(first!.hosts, '[web1.example.com]:2222')).toBe(true);
    expect(hostsFieldMatches(first!.hosts, 'web1.example.com')).toBe(false);
    expect(hostsFieldMatches(first!.hosts, '[web1.example.com]:22')).toBe(false);
  });

  it('hashes names the way OpenSSH does (HMAC-SHA1 with the salt)', () => {
    const salt = Buffer.from('Xe28hVLZTV7sROAwgx9EBkgdzYk=', 'base64');
    expect(hashHostName('[web1.example.com]:2222', salt)).toBe('|1|Xe28hVLZTV7sROAwgx9EBkgdzYk=|U72bhfnp/Eh854/mkKt7qYh3X8A=');
  });
});

describe('parsing', () => {
  it('skips comments and blank lines, reads markers, and reports malformed lines with their line numbers', () => {
    const { entries, problems } = parseKnownHosts(
      ['# comment', '', line('a', ED25519), line('*', ECDSA, '@revoked'), line('*.example.com', ED25519, '@cert-authority'), 'b ssh-ed25519', '@bogus c ssh-ed25519 AAAA', 'd ssh-ed25519 !!!!'].join('\n'),
      'kh',
    );
    expect(entries.map((e) => [e.line, e.marker, e.hosts])).toEqual([
      [3, null, 'a'],
      [4, 'revoked', '*'],
      [5, 'cert-authority', '*.example.com'],
    ]);
    expect(problems.map((p) => p.line)).toEqual([6, 7, 8]);
  });
});

describe('checking a server key', () => {
  it('accepts a key listed for [host]:port', () => {
    const kh = file('known_hosts', [line('[127.0.0.1]:2222', ED25519)]);
    expect(checkHostKey([kh], '127.0.0.1', 2222, ED25519)).toEqual({ status: 'match', file: kh, line: 1 });
    expect(checkHostKey([kh], '127.0.0.1', 22, ED25519).status).toBe('unknown');
  });

  it('accepts a hashed entry', () => {
    const kh = join(FIXTURES, 'hashed_known_hosts');
    expect(checkHostKey([kh], 'web1.example.com', 2222, ED25519)).toEqual({ status: 'match', file: kh, line: 2 });
    expect(checkHostKey([kh], 'web2.example.com', 22, ECDSA)).toEqual({ status: 'match', file: kh, line: 3 });
  });

  it('accepts any of several keys listed for one host, across files', () => {
    const user = file('known_hosts', [line('web1', ED25519), line('web1', newKey('ecdsa'))]);
    const global = file('ssh_known_hosts', [line('web1', ECDSA)]);
    expect(checkHostKey([user, global], 'web1', 22, ED25519).status).toBe('match');
    expect(checkHostKey([user, global], 'web1', 22, ECDSA)).toEqual({ status: 'match', file: global, line: 1 });
  });

  it('calls a different key of the same type "changed", naming the file, line and both fingerprints', () => {
    const offered = newKey();
    const kh = file('known_hosts', [line('other', newKey()), line('web1,10.0.0.5', ED25519)]);
    expect(checkHostKey([kh], 'web1', 22, offered)).toMatchObject({
      status: 'changed',
      file: kh,
      line: 2,
      expected: fingerprint(ED25519),
      actual: fingerprint(offered),
      keyType: 'ssh-ed25519',
    });
  });

  it('calls a key of a type not listed "unknown", listing the other types known', () => {
    const kh = file('known_hosts', [line('web1', ECDSA)]);
    const verdict = checkHostKey([kh], 'web1', 22, ED25519);
    expect(verdict).toMatchObject({ status: 'unknown', keyType: 'ssh-ed25519', otherKeys: [{ file: kh, line: 1, keyType: 'ecdsa-sha2-nistp256' }] });
  });

  it('refuses a @revoked key even when it is also listed as trusted', () => {
    const kh = file('known_hosts', [line('web1', ED25519), line('*', ED25519, '@revoked')]);
    expect(checkHostKey([kh], 'web1', 22, ED25519)).toMatchObject({ status: 'revoked', file: kh, line: 2 });
  });

  it('reports @cert-authority lines covering the host (ssh2 cannot check certificates)', () => {
    const kh = file('known_hosts', [line('*.example.com', ECDSA, '@cert-authority')]);
    expect(checkHostKey([kh], 'web1.example.com', 22, ED25519)).toMatchObject({ status: 'unknown', certAuthorities: [{ line: 1 }] });
    expect(checkHostKey([kh], 'web1.other.org', 22, ED25519)).toMatchObject({ status: 'unknown', certAuthorities: [] });
  });

  it('skips missing files', () => {
    expect(checkHostKey([join(dir, 'nope')], 'web1', 22, ED25519).status).toBe('unknown');
  });

  it('lists the key types known for a host, for ordering host key algorithms', () => {
    const kh = file('known_hosts', [line('web1', ECDSA), line('web1', ED25519), line('web1', ED25519, '@revoked'), line('web2', newKey())]);
    expect(knownKeyTypes([kh], 'web1')).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519']);
  });
});

describe('recording a key', () => {
  it('creates ~/.ssh 0700 and appends a plain line that then matches', () => {
    const kh = join(dir, 'home', '.ssh', 'known_hosts');
    expect(appendKnownHost(kh, '[127.0.0.1]:2222', ED25519)).toBe(1);
    expect(statSync(dirname(kh)).mode & 0o777).toBe(0o700);
    expect(readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${ED25519.toString('base64')}\n`);
    expect(checkHostKeyByName([kh], '[127.0.0.1]:2222', ED25519).status).toBe('match');
  });

  it('appends after a last line without a newline, and hashes when asked (HashKnownHosts yes)', () => {
    const kh = join(dir, 'known_hosts');
    writeFileSync(kh, line('web1', ECDSA));
    expect(appendKnownHost(kh, 'web2', ED25519, { hash: true })).toBe(2);
    const lines = readFileSync(kh, 'utf8').split('\n');
    expect(lines[1]).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
    expect(lines[1]).not.toContain('web2');
    expect(checkHostKeyByName([kh], 'web2', ED25519)).toEqual({ status: 'match', file: kh, line: 2 });
    expect(checkHostKeyByName([kh], 'web1', ECDSA).status).toBe('match');
  });
});
