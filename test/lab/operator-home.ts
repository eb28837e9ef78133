import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Sshd } from './lab.ts';

/** The operator's side of an e2e run: a HOME of its own and the environment `deploy` runs with. */
export interface OperatorHome {
  home: string;
  env: NodeJS.ProcessEnv;
  /** Removes the home directory. */
  remove(): void;
}

/**
 * A clean HOME whose `~/.ssh/known_hosts` trusts only the lab's sshd, no
 * agent, no DEPLOY_* policy from the caller's environment, and Debian's
 * python3 first on PATH (pyenv's shim, root's PATH here, has no Django;
 * manage.py's `env python3` must find Debian's).
 */
export function operatorHome(sshd: Sshd, prefix: string): OperatorHome {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  fs.writeFileSync(path.join(home, '.ssh', 'known_hosts'), sshd.knownHostsLines.join('\n') + '\n', { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    PATH: ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':'),
    SSH_AUTH_SOCK: undefined,
    DEPLOY_YES: undefined,
    DEPLOY_ON_FAILURE: undefined,
  };
  return { home, env, remove: () => fs.rmSync(home, { recursive: true, force: true }) };
}
