import { existsSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fingerprint, knownValid, rememberValid, validatedDir, validationKey } from '../../src/config/validated-cache.ts';
import { removeTempDirs, tempDir } from '../helpers/temp-dirs.ts';

afterAll(removeTempDirs);

const config = () => ({
  sites: { alleged: { host: 'web1', port: 22, vars: { repo: 'git@example.com:a.git', dirs: ['static'] } } },
  tasks: { deploy: async () => {} },
});

describe('fingerprint of an exported deployfile', () => {
  it('is the same for the same value, whatever its functions do', () => {
    const other = config();
    other.tasks.deploy = async () => {
      throw new Error('a different body');
    };
    expect(fingerprint(config())).toBeDefined();
    expect(fingerprint(other)).toBe(fingerprint(config()));
  });

  it('changes with any setting the schema could see: a value, its type, a key, an element', () => {
    const base = fingerprint(config());
    const variants: Array<(c: ReturnType<typeof config>) => void> = [
      (c) => (c.sites.alleged.host = 'web2'),
      (c) => ((c.sites.alleged as Record<string, unknown>).port = '22'),
      (c) => ((c.sites.alleged as Record<string, unknown>).user = 'deploy'),
      (c) => ((c.sites.alleged as Record<string, unknown>).port = undefined),
      (c) => c.sites.alleged.vars.dirs.push('media'),
      (c) => ((c.tasks as Record<string, unknown>).deploy = 'echo hi'),
      (c) => ((c as Record<string, unknown>).groups = { web: ['alleged'] }),
    ];
    const seen = new Set([base]);
    for (const change of variants) {
      const c = config();
      change(c);
      const text = fingerprint(c);
      expect(text).toBeDefined();
      expect(seen.has(text)).toBe(false);
      seen.add(text);
    }
  });

  it('refuses what it cannot write out exactly, so that such a deployfile is validated every time', () => {
    const cyclic = config() as Record<string, unknown>;
    (cyclic.sites as Record<string, Record<string, unknown>>).alleged!.vars = { self: cyclic };
    const getter = config();
    Object.defineProperty(getter.sites.alleged, 'port', { get: () => 22, enumerable: true });
    const hidden = config();
    Object.defineProperty(hidden.sites.alleged, 'user', { value: 'not valid', enumerable: false });
    const symbolKey = { ...config(), [Symbol('x')]: 1 };
    const instance = config() as Record<string, unknown>;
    (instance.sites as Record<string, Record<string, unknown>>).alleged!.vars = { when: new Date(0) };
    for (const value of [cyclic, getter, hidden, symbolKey, instance]) expect(fingerprint(value)).toBeUndefined();
  });

  it('keys a verdict by what validated it too: another schema forgets it', () => {
    expect(validationKey(config(), 'schema v1')).toMatch(/^[0-9a-f]{64}$/);
    expect(validationKey(config(), 'schema v2')).not.toBe(validationKey(config(), 'schema v1'));
  });
});

describe('remembered verdicts', () => {
  it('live under $XDG_CACHE_HOME/deployfile/valid', () => {
    expect(validatedDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/deployfile/valid');
    expect(validatedDir({})).toMatch(/\.cache\/deployfile\/valid$/);
  });

  it('are found once remembered, and only then', async () => {
    const dir = join(await tempDir('deployfile-valid-'), 'valid');
    expect(knownValid('k1', dir)).toBe(false);
    rememberValid('k1', dir);
    expect(knownValid('k1', dir)).toBe(true);
    expect(knownValid('k2', dir)).toBe(false);
  });

  it('keep the newest 200, so that editing a deployfile for years does not fill the disk', async () => {
    const dir = join(await tempDir('deployfile-valid-'), 'valid');
    for (let i = 0; i < 201; i++) {
      rememberValid(`k${i}`, dir);
      utimesSync(join(dir, `k${i}`), i + 1, i + 1);
    }
    rememberValid('newest', dir);
    expect(readdirSync(dir)).toHaveLength(200);
    expect(existsSync(join(dir, 'k0'))).toBe(false);
    expect(existsSync(join(dir, 'k1'))).toBe(false);
    expect(existsSync(join(dir, 'newest'))).toBe(true);
  });

  it('are not needed: a cache that cannot be written is skipped without a word', async () => {
    const notADir = join(await tempDir('deployfile-valid-'), 'a-file');
    writeFileSync(notADir, '');
    expect(() => rememberValid('k', join(notADir, 'valid'))).not.toThrow();
    expect(knownValid('k', join(notADir, 'valid'))).toBe(false);
  });
});
