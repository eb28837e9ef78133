import { describe, expect, it } from 'vitest';
import { ConnectionError } from '../../src/core/errors.ts';
import { retryingConnect } from '../../src/connection/site-connection.ts';
import { backoffDelay, type RetryPolicy } from '../../src/executor/retry.ts';
import type { Transport } from '../../src/transports/transport.ts';

/** A transport whose first connects fail with the given errors, then succeed. */
function flaky(failures: Error[]): Transport & { attempts: number; execs: string[] } {
  const t = {
    target: 'alleged@web1:22',
    attempts: 0,
    execs: [] as string[],
    async connect() {
      const failure = failures[t.attempts++];
      if (failure) throw failure;
    },
    async exec(command: string) {
      t.execs.push(command);
      return { exitCode: 0, signal: null };
    },
    async put() {},
    async get() {},
    async close() {},
  };
  return t;
}

const fast: RetryPolicy = { attempts: 4, baseDelayMs: 1, maxDelayMs: 4 };
const refused = () => new ConnectionError('could not connect to web1:22: connection closed during the handshake', 'alleged', true);

describe('connecting again after transient refusals', () => {
  it('retries refusals (MaxStartups) with backoff and says so each time', async () => {
    const inner = flaky([refused(), refused()]);
    const said: string[] = [];
    const t = retryingConnect(inner, { policy: fast, onRetry: ({ attempt, attempts }) => said.push(`${attempt + 1}/${attempts}`) });
    await t.exec('uptime', {});
    expect(inner.attempts).toBe(3);
    expect(said).toEqual(['2/4', '3/4']);
    expect(inner.execs).toEqual(['uptime']);
  });

  it('never retries authentication or host key refusals', async () => {
    for (const error of [
      new ConnectionError('authentication to alleged@web1:22 failed; tried: ~/.ssh/id_ed25519: rejected', 'alleged', false),
      new ConnectionError('site alleged: host key of web1 CHANGED', 'alleged', false),
    ]) {
      const inner = flaky([error]);
      const said: number[] = [];
      await expect(retryingConnect(inner, { policy: fast, onRetry: ({ attempt }) => said.push(attempt) }).connect()).rejects.toBe(error);
      expect(inner.attempts).toBe(1);
      expect(said).toEqual([]);
    }
  });

  it('gives up after the last attempt with the last error', async () => {
    const inner = flaky([refused(), refused(), refused(), refused(), refused()]);
    await expect(retryingConnect(inner, { policy: fast }).connect()).rejects.toThrow(/handshake/);
    expect(inner.attempts).toBe(4);
  });

  it('starts no attempt after maxElapsedMs: a host that never answers costs a few ConnectTimeouts', async () => {
    const inner = flaky([refused(), refused(), refused()]);
    await expect(retryingConnect(inner, { policy: { attempts: 10, baseDelayMs: 60, maxDelayMs: 60, maxElapsedMs: 100 }, random: () => 1 }).connect()).rejects.toThrow(/handshake/);
    expect(inner.attempts).toBe(2);
  });

  it('Ctrl-C stops the waiting', async () => {
    const inner = flaky([refused(), refused()]);
    const interrupt = new AbortController();
    const t = retryingConnect(inner, { policy: { attempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 }, signal: interrupt.signal, onRetry: () => interrupt.abort() });
    await expect(t.connect()).rejects.toThrow(/interrupted while connecting/);
    expect(inner.attempts).toBe(1);
  });

  it('waits longer each time, with jitter, up to the ceiling', () => {
    const policy = { attempts: 10, baseDelayMs: 250, maxDelayMs: 8000 };
    expect(backoffDelay(1, policy, () => 0)).toBe(125);
    expect(backoffDelay(1, policy, () => 1)).toBe(250);
    expect(backoffDelay(3, policy, () => 1)).toBe(1000);
    expect(backoffDelay(9, policy, () => 1)).toBe(8000);
    expect(backoffDelay(9, policy, () => 0)).toBe(4000);
  });
});
