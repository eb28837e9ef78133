import { describe, expect, it } from 'vitest';
import { Redactor, StreamRedactor } from '../../src/core/secret.ts';
import { sh } from '../../src/core/quote.ts';
import { secret } from '../../src/core/secret.ts';
import { runDeployfile, startSshFixture } from '../helpers/embedded-site.ts';

describe('Redactor', () => {
  it('masks secrets and their shell-quoted forms', () => {
    const r = new Redactor();
    r.add("pa'ss word");
    expect(r.redact("echo pa'ss word")).toBe('echo ***');
    expect(r.redact(sh`echo ${"pa'ss word"}`.text)).toBe("echo '***'");
  });
});

describe('StreamRedactor', () => {
  it('catches a secret split across chunks, one character at a time', () => {
    const r = new Redactor();
    r.add('hunter2-secret');
    const stream = new StreamRedactor(r);
    const text = 'password is hunter2-secret\nand again hunter2-secret at the end';
    const out = [...text].map((ch) => stream.push(ch)).join('') + stream.flush();
    expect(out).toBe('password is ***\nand again *** at the end');
  });

  it('passes output straight through while there is nothing to hide', () => {
    const stream = new StreamRedactor(new Redactor());
    expect(stream.push('partial line')).toBe('partial line');
  });
});

describe('secrets in a real run', () => {
  it('a secret printed by a command in tiny pieces never reaches an output event', async () => {
    const fx = await startSshFixture(['alleged']);
    try {
      const password = secret('s3cret-Value-42');
      // `: secret` registers it; the printfs emit it in pieces that arrive as separate chunks.
      const { of } = await runDeployfile(
        fx,
        { sites: { alleged: { host: fx.server.host, port: fx.server.port } }, tasks: { t: async (c) => { await c.run(sh`: ${password}; printf s3c; sleep 0.2; printf ret-Val; sleep 0.2; printf 'ue-42 done'; echo`); } } },
        ['t'],
      );
      const chunks = of('output').map((e) => e.chunk);
      expect(chunks.join('')).toBe('*** done\n');
    } finally {
      await fx.close();
    }
  });
});
