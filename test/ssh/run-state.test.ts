import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Redactor } from '../../src/core/secret.ts';
import { runStateOf, SshRunState } from '../../src/ssh/run-state.ts';
import { sshRunSettings } from '../../src/ssh/run-settings.ts';
import type { SshSettings } from '../../src/ssh/settings.ts';

const home = mkdtempSync(join(tmpdir(), 'deployfile-run-state-'));
afterAll(() => rmSync(home, { recursive: true, force: true }));

describe("a run's SSH state", () => {
  it('is an object the run owns: a copy of the settings ({ ...ssh, configFile }) still knows the accepted host keys', () => {
    const { ssh } = sshRunSettings({ redactor: new Redactor(), onWarning: () => undefined, env: {} });
    expect(ssh.runState).toBeInstanceOf(SshRunState);
    runStateOf(ssh).accepted.add('[web1]:22 AAAA');
    const copy: SshSettings = { ...ssh, configFile: 'none' };
    expect(runStateOf(copy)).toBe(runStateOf(ssh));
    expect(runStateOf(copy).accepted.has('[web1]:22 AAAA')).toBe(true);
  });

  it('settings without one get one on first use, kept for every site given the same settings', () => {
    const settings: SshSettings = {};
    expect(runStateOf(settings)).toBe(runStateOf(settings));
    expect(runStateOf({})).not.toBe(runStateOf(settings));
  });

  it('reads ssh config once per set of files: another -F is read on its own', () => {
    const state = new SshRunState();
    const none = state.sshConfig({ configFile: 'none', home, systemConfigFile: null });
    expect(state.sshConfig({ configFile: 'none', home, systemConfigFile: null })).toBe(none);
    expect(state.sshConfig({ home, systemConfigFile: null })).not.toBe(none);
  });
});
