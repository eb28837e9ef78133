import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DeployEvent, SiteSummary, SiteStatus } from '../../src/core/event-schema.ts';

// docs/events.md is the contract for people parsing `deploy run --json`:
// every event type and field the schema has must be documented there.
const doc = readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8');

/** The text of the `### <title>` section, up to the next heading. */
function section(title: string): string {
  const start = doc.indexOf(`### \`${title}\``);
  if (start < 0) return '';
  const rest = doc.slice(start + 4);
  const end = rest.search(/\n##/);
  return end < 0 ? rest : rest.slice(0, end);
}

const envelope = ['v', 'runId', 'ts', 'type'];
const summaryFields = Object.keys(SiteSummary.shape);

describe('docs/events.md', () => {
  for (const option of DeployEvent.options) {
    const type = option.shape.type.value;
    it(`documents ${type} and every one of its fields`, () => {
      const text = section(type);
      expect(text, `docs/events.md needs a "### \`${type}\`" section`).not.toBe('');
      const documented = type === 'site:end' ? summaryFields : Object.keys(option.shape).filter((key) => !envelope.includes(key));
      const table = type === 'site:end' ? doc : text;
      for (const field of documented) expect(table, `docs/events.md: document field \`${field}\` of ${type}`).toContain(`| \`${field}\` |`);
    });
  }

  it('documents the envelope, every summary field and every site status', () => {
    for (const field of [...envelope, ...summaryFields]) expect(doc).toContain(`| \`${field}\` |`);
    for (const status of SiteStatus.options) expect(doc).toContain(`| \`${status}\` |`);
  });

  it('its example lines are valid events', () => {
    const lines = doc.split('\n').filter((line) => line.startsWith('{"v":1'));
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) {
      const parsed = DeployEvent.safeParse(JSON.parse(line));
      expect(parsed.success, `${line}\n${parsed.error?.message}`).toBe(true);
    }
  });
});
