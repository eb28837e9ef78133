import { describe, expect, it } from 'vitest';
import { DEFAULT_PARALLEL, parseDeployRunOptions } from '../../src/cli/options.ts';
import { UsageError } from '../../src/core/errors.ts';

const usage = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string => {
  try {
    parseDeployRunOptions(flags, env);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as Error).message;
  }
  throw new Error('expected a UsageError');
};

describe('deploy run options', () => {
  it('defaults: no flags, no environment', () => {
    expect(parseDeployRunOptions({}, {})).toMatchObject({ yes: false, dryRun: false, verbose: false, json: false, acceptNewHostKeys: false, parallel: DEFAULT_PARALLEL });
    const parsed = parseDeployRunOptions({}, {});
    for (const key of ['site', 'exclude', 'shard', 'onFailure', 'batch', 'maxFailures', 'timeout', 'deadline'] as const) expect(parsed[key]).toBeUndefined();
  });

  it('reads the environment, with flags winning over it', () => {
    const env = { DEPLOY_PARALLEL: '3', DEPLOY_YES: 'yes', DEPLOY_JSON: 'off', DEPLOY_TIMEOUT: '90s', DEPLOY_SHARD: '2/4', DEPLOY_ON_FAILURE: 'continue', DEPLOY_SITE: 'shop-*' };
    expect(parseDeployRunOptions({}, env)).toMatchObject({ parallel: 3, yes: true, json: false, timeout: 90_000, shard: { index: 2, count: 4 }, onFailure: 'continue', site: 'shop-*' });
    expect(parseDeployRunOptions({ parallel: '7', site: 'blog', json: true }, env)).toMatchObject({ parallel: 7, site: 'blog', json: true });
  });

  it('takes the parallelism from --batch when --parallel is not given', () => {
    expect(parseDeployRunOptions({ batch: '4' }, {}).parallel).toBe(4);
    expect(parseDeployRunOptions({ batch: '4', parallel: '2' }, {}).parallel).toBe(2);
  });

  it.each([
    [{ parallel: 'lots' }, {}, '--parallel / DEPLOY_PARALLEL: expected a number, got "lots"'],
    [{}, { DEPLOY_PARALLEL: '2.5' }, '--parallel / DEPLOY_PARALLEL: must be a whole number'],
    [{ parallel: '0' }, {}, '--parallel / DEPLOY_PARALLEL: must be at least 1'],
    [{ parallel: '1001' }, {}, '--parallel / DEPLOY_PARALLEL: must be at most 1000'],
    [{ maxFailures: '-1' }, {}, '--max-failures / DEPLOY_MAX_FAILURES: must be at least 1'],
    [{ onFailure: 'maybe' }, {}, '--on-failure / DEPLOY_ON_FAILURE: expected "abort" or "continue", got "maybe"'],
    [{}, { DEPLOY_SHARD: '5/4' }, '--shard / DEPLOY_SHARD: "5/4": expected I/N with 1 <= I <= N'],
    [{ timeout: 'soon' }, {}, '--timeout / DEPLOY_TIMEOUT: '],
    [{ deadline: '0m' }, {}, '--deadline / DEPLOY_DEADLINE: "0m" is zero; give a duration such as 30s or 10m, or leave it out for no deadline for the run'],
    [{ site: '' }, {}, '-s/--site "" names no site'],
  ])('refuses %j %j with the flag, its variable and the reason', (flags, env, expected) => {
    expect(usage(flags, env)).toContain(expected);
  });
});
