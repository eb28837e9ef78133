import { describe, expect, it } from 'vitest';
import type { SiteSummary } from '../../src/core/events.ts';
import { style } from '../../src/views/style.ts';
import { countResults, describeResult, renderSummary } from '../../src/views/summary.ts';

const rows: SiteSummary[] = [
  { site: 'alleged', target: 'alleged@web1:22', status: 'ok', durationMs: 12_300 },
  { site: 'bravo', target: 'bravo@web1:22', status: 'failed', durationMs: 4_100, failedTask: 'deploy', failedCommand: 'git pull --ff-only', error: 'Command failed with exit code 1 on bravo (bravo@web1:22): git pull --ff-only' },
  { site: 'charlie', target: 'charlie@web1:22', status: 'failed', durationMs: 900, failedTask: 'deploy', error: 'authentication to charlie@web1:22 failed; tried: ~/.ssh/id_ed25519: rejected\nmore detail' },
  { site: 'delta', target: 'delta@web1:22', status: 'skipped', durationMs: 10 },
  { site: 'echo', target: 'echo@web1:22', status: 'not-started', durationMs: 0 },
  { site: 'foxtrot', target: 'foxtrot@web1:22', status: 'interrupted', durationMs: 2_000, failedTask: 'migrate', failedCommand: 'manage.py migrate' },
];

describe('the end-of-run summary', () => {
  it('says per site: ok, failed at which task and command, skipped, not started', () => {
    expect(rows.map(describeResult)).toEqual([
      'ok',
      'failed at deploy: git pull --ff-only',
      'failed at deploy: authentication to charlie@web1:22 failed; tried: ~/.ssh/id_ed25519: rejected',
      'skipped',
      'not started',
      'interrupted at migrate: manage.py migrate',
    ]);
  });

  it('counts each result', () => {
    expect(countResults(rows)).toBe('1 ok, 2 failed, 1 interrupted, 1 skipped, 1 not started');
    expect(countResults([rows[0]!])).toBe('1 ok');
    expect(countResults([rows[1]!])).toBe('0 ok, 1 failed');
  });

  it('renders a table: a row per site in order, with durations ("-" for sites never started)', () => {
    const text = renderSummary(rows, style(false));
    const lines = text.split('\n');
    expect(lines[0]).toBe('Summary: 1 ok, 2 failed, 1 interrupted, 1 skipped, 1 not started (6 sites)');
    expect(lines[1]).toMatch(/^ {2}site {5}result +duration$/);
    expect(lines.slice(2).map((line) => line.trim().split(/\s+/)[0])).toEqual(['alleged', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot']);
    expect(lines[2]).toMatch(/alleged\s+ok\s+12\.3s$/);
    expect(lines[3]).toMatch(/bravo\s+failed at deploy: git pull --ff-only\s+4\.1s$/);
    expect(lines[6]).toMatch(/echo\s+not started\s+-$/);
  });

  it('has nothing to say about a run without sites', () => {
    expect(renderSummary([], style(false))).toBe('');
  });
});
