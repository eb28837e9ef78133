// A deploy in the releases layout stopped at each stage (the process killed,
// Ctrl-C, SIGTERM) against the real thing (OpenSSH, a uWSGI emperor in tyrant
// mode, nginx). After each stop the site must be consistent: ~/Sites/<site>
// and ~/virtualenvs/<site> are valid links to a release and the virtualenv
// the record says it was built with, the record's current release is the
// linked one, a reload serves complete old or complete new code with
// production settings, and the next deploy succeeds. trust.e2e.test.ts does
// the same for the in-place layout.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), in a lab of its own:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-relstop DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/relstop-lab.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/releases-stops.e2e.test.ts
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentRelease, parseRecord, releaseStates, type ReleaseState } from '../../tasks/releases/record.ts';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { refuseOtherEmperors, reloadVassalAndWait } from '../lab/emperors.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
const SITE = 'rstop';
const RUN_MS = 180_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`a releases deploy stopped at each stage leaves a consistent site${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let site: lab.DjangoSite;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let nginx: lab.Nginx | undefined;
  let operator: ReturnType<typeof operatorHome> | undefined;
  /** Where the operator keeps the deployfile: beside the project, not in it. */
  let ops: string | undefined;
  let home: string;

  beforeAll(async () => {
    refuseOtherEmperors();
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo(SITE, EXAMPLE);
    const user = await lab.createSiteUser(SITE, { authorizedKeys: [key.publicKey] });
    home = user.home;
    // What an earlier run left: this test starts from an in-place site.
    for (const leftover of ['releases', '.deployfile', 'Sites', 'virtualenvs', 'static']) fs.rmSync(path.join(home, leftover), { recursive: true, force: true });
    site = await lab.setupDjangoSite(SITE, { origin, settingsPackage: 'example_site' });
    // The lab has no network: a requirement pip cannot find must fail at once, not after retries.
    const pipConf = path.join(home, '.config', 'pip');
    await lab.runAs(SITE, 'mkdir', ['-p', pipConf]);
    await lab.runAs(SITE, 'sh', ['-c', `printf '[global]\\nno-index = true\\n' > ${pipConf}/pip.conf`]);
    await lab.runAs(SITE, 'cp', ['example_site/settings_production.py', 'example_site/settings.py'], { cwd: site.siteDir });
    sshd = await lab.startSshd();
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    nginx = await lab.startNginx([{ name: SITE, socket: site.socketPath, staticRoot: path.join(home, 'static') }]);
    await served(origin.initialRevision);
    operator = operatorHome(sshd, 'deployfile-relstop-home-');
    ops = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-relstop-ops-'));
    fs.writeFileSync(path.join(ops, 'deployfile.ts'), deployfileText());
  });

  afterAll(async () => {
    await nginx?.stop();
    await emperor?.stop();
    await sshd?.stop();
    operator?.remove();
    if (ops) fs.rmSync(ops, { recursive: true, force: true });
  });

  function deployfileText(): string {
    const server = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
    const vars = { settings: 'example_site', layout: 'releases', localDir: origin.workDir, vassal: lab.vassalPath(SITE) };
    return `// Written by test/e2e/releases-stops.e2e.test.ts.
import { defineDeployfile, task } from 'deployfile';
import { deploy, djangoTasks, RELEASE_STEPS, type DjangoVars } from 'deployfile/tasks';

// RELSTOP_MIN_FREE_MIB: a disk floor no filesystem meets, for the test of the refusal.
const builtIn = djangoTasks({ apps: ['pages'], ...(process.env.RELSTOP_MIN_FREE_MIB ? { minFreeMiB: Number(process.env.RELSTOP_MIN_FREE_MIB) } : {}) });

/** The releases deploy with one more step after \`after\`: how the tests stop a deploy between stages. */
const stopAfter = (after: string, step: string) => {
  const at = RELEASE_STEPS.indexOf(after as (typeof RELEASE_STEPS)[number]) + 1;
  return deploy({ releaseSteps: [...RELEASE_STEPS.slice(0, at), step, ...RELEASE_STEPS.slice(at)] });
};

export default defineDeployfile<DjangoVars>({
  sites: { ${SITE}: { ...${JSON.stringify(server)}, vars: ${JSON.stringify(vars)} } },
  tasks: {
    ...builtIn,
    // The deploy process killed outright (kill -9, an OOM kill, a closed CI runner).
    die: task('Kill this deploy process', async () => {
      process.kill(process.pid, 'SIGKILL');
      await new Promise(() => {});
    }),
    pause: task('Wait on the server', async (c) => {
      await c.run('sleep 60');
    }),
    dieAfter_buildRelease: stopAfter('buildRelease', 'die'),
    pauseAfter_buildRelease: stopAfter('buildRelease', 'pause'),
    // In the middle of activateRelease: after the switch, before the reload's touch.
    touchVassalIni: task(builtIn.touchVassalIni.description ?? 'touchVassalIni', async (c) => {
      if (process.env.RELSTOP_BEFORE_TOUCH === 'die') process.kill(process.pid, 'SIGKILL');
      if (process.env.RELSTOP_BEFORE_TOUCH === 'pause') await c.run('sleep 60');
      await builtIn.touchVassalIni.run(c);
    }),
  },
});
`;
  }

  type Run = CliRun & { output: string };

  async function run(args: string[], options: { env?: NodeJS.ProcessEnv; onStart?: (child: ChildProcess) => void } = {}): Promise<Run> {
    const result = await deploy(args, { cwd: ops, env: { ...operator!.env, ...options.env }, timeoutMs: RUN_MS, onStart: options.onStart });
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== deploy ${args.join(' ')}: exit ${result.code}\n${result.stdout}${result.stderr}\n`);
    return { ...result, output: result.stdout + result.stderr };
  }

  function expectExit(result: Run, code: number | null): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  /** Sends `signal` to the deploy process as soon as its output shows `line`. */
  function signalOn(line: string, signal: NodeJS.Signals): (child: ChildProcess) => void {
    return (child) => {
      let sent = false;
      for (const stream of [child.stdout, child.stderr]) {
        stream?.on('data', (chunk: Buffer | string) => {
          if (!sent && chunk.toString().includes(line)) {
            sent = true;
            child.kill(signal);
          }
        });
      }
    };
  }

  async function git(...args: string[]): Promise<string> {
    return (await lab.run('git', args, { cwd: origin.workDir })).stdout.trim();
  }

  /** A code-only commit in the working copy, not pushed: pushing is the deploy's job. */
  async function commit(message: string): Promise<string> {
    fs.appendFileSync(path.join(origin.workDir, 'README.md'), `\n${message}.\n`);
    await git('add', '-A');
    await git('commit', '-q', '-m', message);
    return git('rev-parse', 'HEAD');
  }

  async function served(revision: string): Promise<void> {
    const url = nginx!.urls[SITE]!;
    const got = await lab.waitForHttp(`${url}revision`, (body, status) => status === 200 && body === revision, 60_000);
    expect(got.body).toBe(revision);
    const settings = await lab.waitForHttp(`${url}settings`, (_b, status) => status === 200);
    expect(settings.body, `${SITE} serves ${revision} with development settings`).toBe('production');
  }

  /**
   * Reload the vassal as the site user would, wait until the emperor has
   * really reloaded it, then read what it serves: what a reload after the
   * stopped deploy puts live.
   */
  async function reloadAndCheck(revision: string): Promise<void> {
    await reloadVassalAndWait(SITE, emperor!.logPath);
    await served(revision);
  }

  function states(): ReleaseState[] {
    return releaseStates(parseRecord(fs.readFileSync(path.join(home, '.deployfile', 'releases.jsonl'), 'utf8')));
  }

  /**
   * The site is consistent: both links are valid and point at a release and
   * the virtualenv the record says it was built with, that release is the
   * record's current one, it holds its production settings, and no
   * half-made link is left beside them. Returns the live release.
   */
  function consistent(): ReleaseState {
    const dir = fs.readlinkSync(site.siteDir);
    const venv = fs.readlinkSync(site.venvDir);
    expect(dir).toMatch(new RegExp(`^${path.join(home, 'releases')}/\\d{8}T\\d{6}Z-[0-9a-f]{7}$`));
    expect(fs.existsSync(path.join(site.siteDir, 'manage.py')), `${site.siteDir} -> ${dir} is not a release`).toBe(true);
    expect(fs.existsSync(path.join(site.venvDir, 'bin', 'python')), `${site.venvDir} -> ${venv} is not a virtualenv`).toBe(true);
    const all = states();
    const live = all.find((r) => r.id === path.basename(dir));
    expect(live, `the record does not know ${dir}`).toBeDefined();
    expect(live!.venv, `${dir} is linked with ${venv}, but the record built it with ${live!.venv}`).toBe(venv);
    expect(currentRelease(all)?.id, `the links point at ${live!.id}, the record's current release is ${currentRelease(all)?.id}`).toBe(live!.id);
    const settings = (name: string) => fs.readFileSync(path.join(site.siteDir, 'example_site', name), 'utf8');
    expect(settings('settings.py')).toBe(settings('settings_production.py'));
    for (const link of [site.siteDir, site.venvDir]) expect(fs.existsSync(`${link}.deployfile-new`), `${link}.deployfile-new left behind`).toBe(false);
    return live!;
  }

  /** A deploy stopped by the process being killed leaves its lock: clear it as `deploy unlock` would. */
  function clearLock(): void {
    fs.rmSync(path.join(home, '.deployfile', 'lock'), { recursive: true, force: true });
  }

  /** The next deploy goes through and serves its revision, from a consistent site. */
  async function nextDeploySucceeds(): Promise<void> {
    const next = await commit('The deploy after a stop');
    expectExit(await run(['run', 'deploy']), 0);
    await served(next);
    expect(consistent().revision).toBe(next);
  }

  it('the first deploy converts the in-place site, and a second one deploys beside it', async () => {
    const first = await commit('The first deploy in the releases layout');
    const result = await run(['run', 'deploy']);
    expectExit(result, 0);
    expect(result.output).toContain('into the first release');
    await served(first);
    expect(consistent().revision).toBe(first);
    await nextDeploySucceeds();
  });

  it('the deploy process killed after buildRelease: the live release is untouched, a reload serves it, the built one waits unused', async () => {
    const live = consistent();
    const next = await commit('Killed after buildRelease');
    const result = await run(['run', 'dieAfter_buildRelease']);
    expectExit(result, null); // killed by SIGKILL: no exit code
    expect(result.output).toContain('built release');
    clearLock();
    expect(consistent().id).toBe(live.id);
    // The new release is complete on disk and recorded as built, never activated.
    const built = states().find((r) => r.revision === next);
    expect(built?.state).toBe('built');
    expect(fs.existsSync(path.join(home, 'releases', built!.id, 'manage.py'))).toBe(true);
    await reloadAndCheck(live.revision);
    await nextDeploySucceeds();
  });

  it('the deploy process killed in the middle of activateRelease (after the switch, before the touch): both links are on the new release, a reload serves it', async () => {
    const live = consistent();
    const next = await commit('Killed before the touch');
    const result = await run(['run', 'deploy'], { env: { RELSTOP_BEFORE_TOUCH: 'die' } });
    expectExit(result, null);
    clearLock();
    const now = consistent();
    expect(now.id).not.toBe(live.id);
    expect(now.revision).toBe(next);
    await reloadAndCheck(next);
    await nextDeploySucceeds();
  });

  it('the deploy process killed right after the switch, before anything else is sent: the record names the linked release as current, and a rollback goes back from it', async () => {
    const live = consistent();
    const liveDir = fs.readlinkSync(site.siteDir);
    const next = await commit('Killed right after the switch');
    // Once the switch has started, watch the code link and kill the deploy the moment it changes:
    // before the deploy process has heard the switch ended, let alone sent anything after it.
    const killAfterSwitch = (child: ChildProcess): void => {
      let watching = false;
      const watch = (until: number): void => {
        let now: string | undefined;
        try {
          now = fs.readlinkSync(site.siteDir);
        } catch {
          now = undefined;
        }
        if (now !== liveDir || Date.now() > until) child.kill('SIGKILL');
        else setImmediate(() => watch(until));
      };
      for (const stream of [child.stdout, child.stderr]) {
        stream?.on('data', (chunk: Buffer | string) => {
          if (!watching && chunk.toString().includes(`switch ${site.siteDir} to release`)) {
            watching = true;
            watch(Date.now() + 10_000);
          }
        });
      }
    };
    const result = await run(['run', 'deploy'], { onStart: killAfterSwitch });
    expectExit(result, null);
    clearLock();
    // The switch's script goes on on the server after the deploy process dies (it cannot be
    // interrupted) and appends the record right after the renames: on a loaded host that can be
    // a moment after the link changed. Wait for it, bounded, then hold the site to the same checks.
    const linked = () => path.basename(fs.readlinkSync(site.siteDir));
    for (const until = Date.now() + 10_000; currentRelease(states())?.id !== linked() && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 100));
    const now = consistent();
    expect(now.id).not.toBe(live.id);
    expect(now.revision).toBe(next);
    await reloadAndCheck(next);
    // So a rollback goes back from the release that is linked, to the one before it.
    const back = await run(['rollback', '--yes', '-m', 'after a killed deploy']);
    expectExit(back, 0);
    expect(back.output).toContain(`current: ${now.id}`);
    expect(consistent().id).toBe(live.id);
    await served(live.revision);
    await nextDeploySucceeds();
  });

  it('below the disk floor (minFreeMiB), buildRelease refuses to start, saying what is free, the floor and what a release takes; nothing is changed', async () => {
    const live = consistent();
    const record = fs.readFileSync(path.join(home, '.deployfile', 'releases.jsonl'), 'utf8');
    const releases = fs.readdirSync(path.join(home, 'releases')).sort();
    await commit('Refused by the disk floor');
    const result = await run(['run', 'deploy'], { env: { RELSTOP_MIN_FREE_MIB: String(10 ** 9) } });
    expectExit(result, 1);
    expect(result.output).toMatch(
      new RegExp(`buildRelease: only \\d+ MiB free on the filesystem of ${path.join(home, 'releases')}, below the floor of 1000000000 MiB \\(a release takes about [1-9]\\d* MiB, plus a virtualenv when the requirements change\\)`),
    );
    expect(result.output).toContain('Nothing was changed.');
    expect(consistent().id).toBe(live.id);
    expect(fs.readFileSync(path.join(home, '.deployfile', 'releases.jsonl'), 'utf8')).toBe(record);
    expect(fs.readdirSync(path.join(home, 'releases')).sort()).toEqual(releases);
    expect(fs.existsSync(path.join(home, '.deployfile', 'lock'))).toBe(false);
    await nextDeploySucceeds();
  });

  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    const what = signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM';

    it(`${what} while a step runs on the server after buildRelease: exit ${code}, the live release untouched, the lock released, the next deploy succeeds`, async () => {
      const live = consistent();
      await commit(`${what} after buildRelease`);
      const result = await run(['run', 'pauseAfter_buildRelease'], { onStart: signalOn('$ sleep 60', signal) });
      expectExit(result, code);
      expect(consistent().id).toBe(live.id);
      await reloadAndCheck(live.revision);
      await nextDeploySucceeds();
    });

    it(`${what} in the middle of activateRelease (switched, the reload's step running): exit ${code}, the new release live and not called bad, the next deploy succeeds`, async () => {
      const live = consistent();
      const next = await commit(`${what} before the touch`);
      const result = await run(['run', 'deploy'], { env: { RELSTOP_BEFORE_TOUCH: 'pause' }, onStart: signalOn('$ sleep 60', signal) });
      expectExit(result, code);
      const now = consistent();
      expect(now.id).not.toBe(live.id);
      expect(now.revision).toBe(next);
      // Stopping is not a verdict: the release was never tried, so it is not recorded bad, nor put back.
      expect(states().filter((r) => r.state === 'bad')).toEqual([]);
      expect(result.output).not.toContain('does not serve');
      await reloadAndCheck(next);
      await nextDeploySucceeds();
    });
  }
});
