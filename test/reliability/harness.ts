// Shared by the reliability e2e tests: the built `deploy` binary started as
// a user starts it (its own HOME and known_hosts, no agent, no TTY), with
// its output kept as a bounded tail and its peak memory measured.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEPLOY_BIN } from '../helpers/cli.ts';
import * as lab from '../lab/lab.ts';

/**
 * A lab directory of its own: other e2e files (and `lab down`) stop every
 * sshd recorded under the default one, which must not happen to ours mid-test.
 */
export const RELIABILITY_LAB_DIR = '/var/tmp/deployfile-lab-reliability';

/** Keeps the last `limit` characters and counts the rest: a test reading 300 MB of output must not hold it. */
class Tail {
  text = '';
  bytes = 0;
  constructor(private readonly limit = 256 * 1024) {}
  push(chunk: string): void {
    this.bytes += Buffer.byteLength(chunk);
    this.text += chunk;
    if (this.text.length > this.limit * 2) this.text = this.text.slice(-this.limit);
  }
}

export interface DeployProcess {
  child: ChildProcess;
  pid: number;
  /** Output so far (the tail of it, for long runs). */
  stdout(): string;
  stderr(): string;
  stdoutBytes(): number;
  /** Resolves when `pattern` appears in stdout or stderr. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; peakRssKb: number }>;
}

// Preloaded into the deploy process: writes its peak RSS (getrusage ru_maxrss, KiB) when it exits.
const PRELOAD = `const fs = require('node:fs');
process.on('exit', () => { try { fs.writeFileSync(process.env.DEPLOY_TEST_RSS_FILE, String(process.resourceUsage().maxRSS)); } catch {} });
`;

/** Start `deploy args...` in `cwd` with `env` (merged over a clean base). */
export function startDeploy(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): DeployProcess {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-rss-'));
  const preload = path.join(scratch, 'rss.cjs');
  const rssFile = path.join(scratch, 'rss');
  fs.writeFileSync(preload, PRELOAD);
  const child = spawn(process.execPath, ['--require', preload, DEPLOY_BIN, ...args], {
    cwd: options.cwd,
    env: { ...options.env, NO_COLOR: '1', CI: '', DEPLOY_TEST_RSS_FILE: rssFile },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin?.end();
  const out = new Tail();
  const err = new Tail();
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  const check = (): void => {
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(out.text) || waiter.pattern.test(err.text)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out.push(chunk);
    if (waiters.length) check();
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err.push(chunk);
    if (waiters.length) check();
  });
  // VmHWM is polled too: it is what the kernel says, and it survives a crash that skips the exit hook.
  let polledKb = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) polledKb = Math.max(polledKb, Number(m[1]));
    } catch {
      // exited
    }
  }, 50);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; peakRssKb: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`deploy ${args.join(' ')} still running after ${timeoutMs} ms\n--- stdout\n${out.text.slice(-4000)}\n--- stderr\n${err.text.slice(-4000)}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearInterval(poll);
      let exitKb = 0;
      try {
        exitKb = Number(fs.readFileSync(rssFile, 'utf8'));
      } catch {
        // killed before its exit hook ran
      }
      fs.rmSync(scratch, { recursive: true, force: true });
      resolve({ code, signal, stdout: out.text, stderr: err.text, peakRssKb: Math.max(polledKb, exitKb) });
    });
  });
  return {
    child,
    pid: child.pid!,
    stdout: () => out.text,
    stderr: () => err.text,
    stdoutBytes: () => out.bytes,
    waitFor(pattern, waitMs = 30_000) {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in deploy's output after ${waitMs} ms\n--- stdout\n${out.text.slice(-3000)}\n--- stderr\n${err.text.slice(-3000)}`)), waitMs);
        waiters.push({
          pattern,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        check();
      });
    },
    done,
  };
}

/** Run `deploy` to the end. */
export function runDeploy(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): DeployProcess['done'] {
  return startDeploy(args, options).done;
}

/** A temp HOME for the operator: known_hosts with the lab's host keys, no keys, no agent. */
export function operatorHome(knownHostsLines: string[], sshConfig?: string): { home: string; env: NodeJS.ProcessEnv } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-reliability-home-'));
  fs.mkdirSync(path.join(home, '.ssh'), { mode: 0o700 });
  fs.writeFileSync(path.join(home, '.ssh', 'known_hosts'), knownHostsLines.join('\n') + '\n', { mode: 0o600 });
  if (sshConfig !== undefined) fs.writeFileSync(path.join(home, '.ssh', 'config'), sshConfig, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    HOME: home,
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
  };
  return { home, env };
}

/**
 * Live processes of `user` whose name is `name`. Zombies don't count: in a
 * container whose PID 1 never reaps, a killed command stays a zombie forever.
 */
export function liveProcesses(uid: number, name: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = fs.readFileSync(`/proc/${entry}/status`, 'utf8');
      const procName = /^Name:\s+(.*)$/m.exec(status)?.[1];
      const state = /^State:\s+(\S)/m.exec(status)?.[1];
      const realUid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      if (procName === name && realUid === uid && state !== 'Z' && state !== 'X') pids.push(Number(entry));
    } catch {
      // gone while we looked
    }
  }
  return pids;
}

/** Polls `check` until it holds, or fails with `what`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The site users' lock directory and history file, as root sees them. */
export function lockDirOf(user: lab.UnixUser): string {
  return path.join(user.home, '.deployfile', 'lock');
}
export function historyOf(user: lab.UnixUser): string {
  return path.join(user.home, '.deployfile', 'history.jsonl');
}

/** Forget what earlier runs left in a site user's home. */
export function resetSiteState(user: lab.UnixUser): void {
  fs.rmSync(path.join(user.home, '.deployfile'), { recursive: true, force: true });
  fs.rmSync(path.join(user.home, 'runs'), { force: true });
}

/** A deployfile whose sites all use the lab's operator key, and whose tasks are given as source text. */
export function deployfileSource(sites: Record<string, { host: string; port: number; identityFile: string }>, tasks: string): string {
  return `// Written by test/reliability: sites on the reliability lab's sshd.
import { defineDeployfile, task } from 'deployfile';
export default defineDeployfile({
  sites: ${JSON.stringify(sites, null, 2)},
  tasks: {
${tasks}
  },
});
`;
}
