import { describe, expect, it } from 'vitest';
import { ConnectionError } from '../../src/core/errors.ts';
import { SiteConnection } from '../../src/connection/site-connection.ts';
import { HandshakeLimiter } from '../../src/executor/handshakes.ts';
import type { Transport } from '../../src/transports/transport.ts';
import { FakeTransport } from '../helpers/fake-transport.ts';

/** A site's connection under `limiter`, not retried (these tests are about the slots). */
const under = (limiter: HandshakeLimiter, transport: Transport): SiteConnection =>
  new SiteConnection({ open: () => transport, handshakes: limiter, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } });

describe('HandshakeLimiter', () => {
  it('lets at most `size` connects run at once, first come first served', async () => {
    const limiter = new HandshakeLimiter(2);
    const order: number[] = [];
    let active = 0;
    let peak = 0;
    await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        limiter.run(async () => {
          order.push(i);
          peak = Math.max(peak, ++active);
          await new Promise((resolve) => setTimeout(resolve, 5));
          active--;
        }),
      ),
    );
    expect(peak).toBe(2);
    expect(limiter.peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('a site\'s connection connects once, before its first command, and not again', async () => {
    const inner = new FakeTransport('a@h:22', { connectDelayMs: 2 });
    const transport = under(new HandshakeLimiter(1), inner);
    expect(transport.target).toBe('a@h:22');
    await Promise.all([transport.exec('one', {}), transport.exec('two', {}), transport.put('/l', '/r')]);
    await transport.exec('three', {});
    expect(inner.handshakes).toBe(1);
    expect(inner.commands).toEqual(['one', 'two', 'three']);
    await transport.close();
    expect(inner.closed).toBe(true);
  });

  it('a failed connect frees its slot and may be tried again', async () => {
    const limiter = new HandshakeLimiter(1);
    let fail = true;
    const inner = new FakeTransport('a@h:22');
    const flaky = Object.assign(Object.create(inner) as FakeTransport, {
      connect: async () => {
        if (fail) throw new ConnectionError('connection closed during the handshake', 'a', true);
        return inner.connect();
      },
    });
    const transport = under(limiter, flaky);
    await expect(transport.exec('x', {})).rejects.toThrow('during the handshake');
    fail = false;
    await expect(transport.exec('x', {})).resolves.toEqual({ exitCode: 0, signal: null });
    // The slot was given back: another transport connects at once.
    await under(limiter, new FakeTransport('b@h:22')).connect();
  });

  it('a command that ends (timeout, Ctrl-C) while waiting for a slot stops waiting', async () => {
    const limiter = new HandshakeLimiter(1);
    const slow = under(limiter, new FakeTransport('a@h:22', { connectDelayMs: 200 }));
    const busy = slow.connect();
    const controller = new AbortController();
    const waiting = under(limiter, new FakeTransport('b@h:22')).exec('x', { signal: controller.signal });
    controller.abort();
    await expect(waiting).rejects.toThrow(/stopped while waiting for a free connection slot/);
    await busy;
  });

  it('refuses a size below 1', () => {
    expect(() => new HandshakeLimiter(0)).toThrow(RangeError);
  });
});
