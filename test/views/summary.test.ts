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
    const text = renderSummary(rows, style(false), 120);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Summary: 1 ok, 2 failed, 1 interrupted, 1 skipped, 1 not started (6 sites)');
    expect(lines[1]).toMatch(/^ {2}site {5}result +duration$/);
    expect(lines.slice(2).map((line) => line.trim().split(/\s+/)[0])).toEqual(['alleged', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot']);
    expect(lines[2]).toMatch(/alleged\s+ok\s+12\.3s$/);
    expect(lines[3]).toMatch(/bravo\s+failed at deploy: git pull --ff-only\s+4\.1s$/);
    expect(lines[6]).toMatch(/echo\s+not started\s+-$/);
  });

  it('a result too long for the width keeps its words in the column and its detail on a line of its own', () => {
    const long = 'git push --force-with-lease origin HEAD:refs/heads/release-candidate-2026-12-01 && git push --tags origin';
    const table = [
      rows[0]!,
      { site: 'bravo', target: 'bravo@web1:22', status: 'failed' as const, durationMs: 4_100, failedTask: 'push', failedCommand: long },
      { site: 'charlie', target: 'charlie@web1:22', status: 'ok' as const, durationMs: 900, failuresSkipped: [`${long} (failed with exit code 1)`] },
    ];
    const lines = renderSummary(table, style(false), 80).split('\n');
    expect(lines).toEqual([
      'Summary: 2 ok, 1 failed (3 sites)',
      expect.stringMatching(/^ {2}site {5}result {17}duration$/),
      expect.stringMatching(/^ {2}alleged {2}ok {21}12\.3s$/),
      expect.stringMatching(/^ {2}bravo {4}failed at push {9}4\.1s$/),
      `           ${long}`,
      expect.stringMatching(/^ {2}charlie {2}ok, 1 failure skipped  900ms$/),
      `           ${long} (failed with exit code 1)`,
    ]);
    // The durations stay in one column; the detail lines start under the results.
    const durationAt = lines.slice(2).filter((line) => /\d(ms|s)$/.test(line)).map((line) => line.search(/\S+$/));
    expect(new Set(durationAt).size).toBe(1);
    // A result that fits stays on its row.
    expect(renderSummary([table[1]!], style(false), 200).split('\n')[2]).toMatch(/bravo\s+failed at push: git push --force-with-lease .* 4\.1s$/);
  });

  it('has nothing to say about a run without sites', () => {
    expect(renderSummary([], style(false))).toBe('');
  });
});
