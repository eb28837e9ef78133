import { describe, expect, it } from 'vitest';
import { ConnectionError } from '../../src/core/errors.ts';
import { SiteConnection } from '../../src/connection/site-connection.ts';
import { lockInfoFor } from '../../src/connection/lock.ts';
import { FakeTransport } from '../helpers/fake-transport.ts';

const noRetry = { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 };
/** A server whose lock script says the lock is taken. */
const lockGranted = (command: string) => (command.includes('deployfile-lock-acquired') ? { stdout: 'deployfile-lock-acquired\n' } : undefined);
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SiteConnection.preconnect', () => {
  it('starts the handshake at once; the first command uses that one and takes the lock only then', async () => {
    const inner = new FakeTransport('a@h:22', { connectDelayMs: 10, script: lockGranted });
    const connection = new SiteConnection({ site: 'a', open: () => inner, retry: noRetry, lock: lockInfoFor('run-1', ['deploy']) });
    connection.preconnect();
    await tick(30);
    // Connected while the run did something else, and nothing was run or locked on the server.
    expect(inner.connected).toBe(true);
    expect(inner.commands).toEqual([]);
    expect(connection.held).toBe(false);

    await connection.exec('true', {});
    expect(inner.handshakes).toBe(1);
    expect(inner.commands).toHaveLength(2);
    expect(inner.commands[0]).toContain('mkdir'); // the lock, before the first command
    expect(inner.commands[1]).toBe('true');
    expect(connection.held).toBe(true);
  });

  it('a command that comes during the early handshake waits for it instead of starting another', async () => {
    const inner = new FakeTransport('a@h:22', { connectDelayMs: 20 });
    const connection = new SiteConnection({ site: 'a', open: () => inner, retry: noRetry });
    connection.preconnect();
    await Promise.all([connection.exec('one', {}), connection.exec('two', {})]);
    expect(inner.handshakes).toBe(1);
    expect(inner.commands).toEqual(['one', 'two']);
  });

  it("an early handshake's failure is what the first command reports, without a second try; a later command tries again", async () => {
    const refused = new ConnectionError('could not connect to a@h:22: connection refused', 'a', false);
    const inner = new FakeTransport('a@h:22', { connectError: refused });
    const connection = new SiteConnection({ site: 'a', open: () => inner, retry: noRetry });
    connection.preconnect();
    await tick();
    await expect(connection.exec('one', {})).rejects.toThrow('connection refused');
    expect(inner.handshakes).toBe(1);
    await expect(connection.exec('two', {})).rejects.toThrow('connection refused');
    expect(inner.handshakes).toBe(2);
    expect(inner.commands).toEqual([]);
  });

  it('does nothing when the connection is already made or being made', async () => {
    const inner = new FakeTransport('a@h:22');
    const connection = new SiteConnection({ site: 'a', open: () => inner, retry: noRetry });
    await connection.exec('one', {});
    connection.preconnect();
    connection.preconnect();
    await connection.exec('two', {});
    expect(inner.handshakes).toBe(1);
  });
});
