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

/** Feed `text` to a StreamRedactor in chunks of `size`, as output arrives. */
function streamed(redactor: Redactor, text: string, size: number): string {
  const stream = new StreamRedactor(redactor);
  let out = '';
  for (let at = 0; at < text.length; at += size) out += stream.push(text.slice(at, at + size));
  return out + stream.flush();
}

const PEM = [
  '-----BEGIN OPENSSH PRIVATE KEY-----',
  'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
  'QyNTUxOQAAACDc0ZmFrZWtleWZvcnRlc3RzMHdoaWNoaXNub3RyZWFsAAAAmB7m2hQe5t',
  'oUAAAAC3NzaC1lZDI1NTE5AAAAINzRmFrZWtleWZvcnRlc3RzMHdoaWNoaXNub3RyZWFs',
  '-----END OPENSSH PRIVATE KEY-----',
  '',
].join('\n');

describe('redaction gaps (issue 11)', () => {
  it('a multi-line secret (a PEM key) split across output chunks is never printed, whatever the chunk size', () => {
    const r = new Redactor();
    r.add(PEM);
    const text = `before\n${PEM}after\n`;
    for (const size of [1, 2, 3, 7, 36, 64, 71, 100, 4096]) {
      const out = streamed(r, text, size);
      expect(out, `chunks of ${size}`).toBe('before\n***after\n');
    }
  });

  it('a line of a PEM key printed on its own is masked too, its armour lines are not', () => {
    const r = new Redactor();
    r.add(PEM);
    const second = PEM.split('\n')[2] as string;
    expect(r.redact(`head: ${second}\n-----BEGIN OPENSSH PRIVATE KEY-----`)).toBe('head: ***\n-----BEGIN OPENSSH PRIVATE KEY-----');
  });

  it('of two overlapping secrets, no part of the longer one is shown', () => {
    const r = new Redactor();
    r.add('abc-secret', 'secret-xyz-long');
    expect(r.redact('value: abc-secret-xyz-long!')).toBe('value: ***!');
    expect(r.redact('prefix-abc-secret and secret-xyz-long')).toBe('prefix-*** and ***');
    // One secret inside another: the longer one is masked whole.
    r.add('inner');
    r.add('outer-inner-outer');
    expect(r.redact('outer-inner-outer and inner')).toBe('*** and ***');
  });

  it('overlapping secrets split across chunks are masked as one, whatever the chunk size', () => {
    const r = new Redactor();
    r.add('abcdef', 'defghijk');
    for (const size of [1, 2, 3, 4, 5]) expect(streamed(r, 'x abcdefghijk y', size), `chunks of ${size}`).toBe('x *** y');
  });

  it("a secret with ' quoted once (a composed line) or twice (inside c.sudo's sh -c) is masked in every form", () => {
    const r = new Redactor();
    const value = "it's-a-secret";
    r.add(value);
    const once = `'it'\\''s-a-secret'`;
    const twice = `'\\''it'\\''\\'\\'''\\''s-a-secret'\\''`;
    expect(r.redact(`echo ${once}`)).toBe(`echo '***'`);
    expect(r.redact(`sh -c 'echo ${twice}'`)).toBe(`sh -c 'echo '\\''***'\\'''`);
    expect(r.redact(`sh -c 'echo ${twice}'`)).not.toMatch(/it|s-a-secret/);
  });

  it('a value marked with secret() is redacted from its creation on, before any command uses it', () => {
    const early = secret('created-before-any-use-1f2e');
    const r = new Redactor(); // a run's redactor that has not seen it in any command
    expect(r.redact('log: created-before-any-use-1f2e')).toBe('log: ***');
    expect(String(early)).toBe('***');
  });

  it('secrets shorter than 3 characters are not searched for in output (they would mask ordinary text)', () => {
    const r = new Redactor();
    r.add('ok', 'x');
    expect(r.redact('ok: x marks the spot')).toBe('ok: x marks the spot');
  });

  it('output whose tail cannot start a secret flows at once, without waiting for a newline', () => {
    const r = new Redactor();
    r.add('hunter2-secret');
    const stream = new StreamRedactor(r);
    expect(stream.push('progress 10%')).toBe('progress 10%');
    expect(stream.push(' 20% hun')).toBe(' 20% ');
    expect(stream.push('ter2-secret done')).toBe('*** done');
    expect(stream.flush()).toBe('');
  });
});
