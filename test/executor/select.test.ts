import { describe, expect, it } from 'vitest';
import { validateDeployfile } from '../../src/config/validate.ts';
import { UsageError } from '../../src/core/errors.ts';
import { globToRegExp, inShard, parseShard, selectSites, siteHash } from '../../src/executor/select.ts';

const names = ['shop-berlin', 'shop-paris', 'shop-test', 'blog', 'wiki', 'api-eu', 'api-us'];
const deployfile = validateDeployfile(
  {
    sites: Object.fromEntries(names.map((name) => [name, { host: 'web1.example.com' }])),
    groups: { apis: ['api-eu', 'api-us'], content: ['blog', 'wiki'], 'eu-all': ['shop-berlin', 'shop-paris', 'api-eu'], everything: ['apis', 'content'] },
    tasks: { deploy: async () => {} },
  },
  'deployfile.ts',
);
const pick = (selection: Parameters<typeof selectSites>[1]) => selectSites(deployfile, selection).map((site) => site.name);
const usage = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('expected a UsageError');
};

describe('selecting sites', () => {
  it('takes every site, in deployfile order, when nothing is named', () => {
    expect(pick({})).toEqual(names);
    expect(pick(undefined)).toEqual(names);
  });

  it('takes named sites and groups (nested ones too), in deployfile order, each once', () => {
    expect(pick({ site: ['wiki', 'apis', 'api-eu'] })).toEqual(['wiki', 'api-eu', 'api-us']);
    expect(pick({ site: ['everything'] })).toEqual(['blog', 'wiki', 'api-eu', 'api-us']);
  });

  it('still accepts the plain list of names it took before', () => {
    expect(pick(['blog'])).toEqual(['blog']);
  });

  it('matches glob patterns against site names, and against group names', () => {
    expect(pick({ site: ['shop-*'] })).toEqual(['shop-berlin', 'shop-paris', 'shop-test']);
    expect(pick({ site: ['api-??'] })).toEqual(['api-eu', 'api-us']);
    expect(pick({ site: ['shop-[bp]*'] })).toEqual(['shop-berlin', 'shop-paris']);
    expect(pick({ site: ['shop-[!t]*'] })).toEqual(['shop-berlin', 'shop-paris']);
    expect(pick({ site: ['eu-*'] })).toEqual(['shop-berlin', 'shop-paris', 'api-eu']);
  });

  it('--exclude takes names, groups and globs away', () => {
    expect(pick({ site: ['shop-*'], exclude: ['shop-test'] })).toEqual(['shop-berlin', 'shop-paris']);
    expect(pick({ exclude: ['shop-*', 'content'] })).toEqual(['api-eu', 'api-us']);
  });

  it('an unknown name is exit 2 with a suggestion, every site and every group', () => {
    const message = usage(() => pick({ site: ['shop-berln'] }));
    expect(message).toContain('unknown site "shop-berln" (did you mean "shop-berlin"?)');
    expect(message).toContain(`Sites: ${names.join(', ')}`);
    expect(message).toContain('groups: apis (api-eu, api-us), content (blog, wiki)');
  });

  it('a glob that matches nothing is an error listing what there is', () => {
    expect(usage(() => pick({ site: ['staging-*'] }))).toMatch(/--site 'staging-\*' matches no site or group\. Sites: shop-berlin.*groups: apis/);
  });

  it('a mistyped --exclude is an error too, never a silent no-op that deploys the site', () => {
    expect(usage(() => pick({ exclude: ['shop-tset'] }))).toContain('--exclude: unknown site "shop-tset" (did you mean "shop-test"?)');
  });

  it('an --exclude that leaves nothing is an error', () => {
    expect(usage(() => pick({ site: ['apis'], exclude: ['api-*'] }))).toContain('leaves no site to run on');
  });
});

describe('--shard I/N', () => {
  const fleet = Array.from({ length: 200 }, (_, i) => `site-${String(i).padStart(3, '0')}`);

  it('parses I/N and refuses anything else', () => {
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    expect(parseShard(' 1 / 1 ')).toEqual({ index: 1, count: 1 });
    for (const bad of ['0/4', '5/4', '1/0', '1', 'a/b', '1/2/3', '-1/2']) expect(() => parseShard(bad)).toThrow(UsageError);
  });

  it('splits a fleet into N disjoint slices that together hold every site', () => {
    const slices = [1, 2, 3, 4].map((index) => fleet.filter((name) => inShard(name, { index, count: 4 })));
    expect(slices.flat().sort()).toEqual(fleet);
    for (const slice of slices) expect(slice.length).toBeGreaterThan(30); // roughly even: 50 expected each
  });

  it('puts a site in the same slice whatever else is in the fleet or in what order', () => {
    const before = fleet.filter((name) => inShard(name, { index: 3, count: 5 }));
    const shuffled = [...fleet].reverse().concat(['new-site-a', 'new-site-b']);
    const after = shuffled.filter((name) => inShard(name, { index: 3, count: 5 }));
    for (const name of before) expect(after).toContain(name);
  });

  it('hashes names the same way on every machine (pinned values)', () => {
    // SHA-256 first 32 bits, big-endian: changing this moves sites between CI runners.
    expect(siteHash('alleged')).toBe(1267382040);
    expect(siteHash('shop-berlin')).toBe(549743740);
    expect(inShard('shop-berlin', { index: 1, count: 4 })).toBe(549743740 % 4 === 0);
  });

  it('applies after --site and --exclude, and an empty slice is not an error', () => {
    const all = [1, 2, 3].flatMap((index) => pick({ site: ['shop-*'], shard: { index, count: 3 } }));
    expect(all.sort()).toEqual(['shop-berlin', 'shop-paris', 'shop-test']);
    const slices = Array.from({ length: 20 }, (_, i) => pick({ site: ['blog'], shard: { index: i + 1, count: 20 } }));
    expect(slices.filter((s) => s.length === 0).length).toBe(19);
  });
});

describe('globToRegExp', () => {
  it('anchors the whole name and escapes regex characters', () => {
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a.b').test('a.b')).toBe(true);
    expect(globToRegExp('web*').test('my-web1')).toBe(false);
  });
});
