// Reload strategies beyond the tyrant touch, against the real thing: a
// vassal with a master FIFO (graceful `r` and chain `c` reloads), a
// `touch-reload` file, and a reload command, each verified the same way as
// the touch (the new instance serves the new revision; a broken one is
// explained), and a chain reload refused where it would leave a gap.
//
// Run as root on Debian 12 (packages: .ci/install-lab-packages), with a lab
// of its own so as not to disturb another lab's runs:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-strategies DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/strategies.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/reload-strategies.e2e.test.ts
// Elsewhere it is skipped, saying why.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { refuseOtherEmperors } from '../lab/emperors.ts';
import * as lab from '../lab/lab.ts';
import { describeRequestLoop, startRequestLoop } from '../lab/request-loop.ts';
import { operatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
/**
 * rsfifo: two lazy workers, a master FIFO and a touch-reload file; rsone: one worker;
 * rsroot: a vassal root owns, run by an emperor not in tyrant mode (uid/gid in the ini).
 */
const SITES = ['rsfifo', 'rsone', 'rsroot'] as const;
type SiteName = (typeof SITES)[number];
const ORIGIN = 'e2e-strategies';
const RUN_MS = 90_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

describe.skipIf(skipReason !== undefined)(`reload strategies: master FIFO, touch-reload, a command${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let rootEmperor: lab.Emperor | undefined;
  let rootIni: string;
  /** Lets rsroot run exactly `touch <its root-owned ini>` as root, and nothing else. */
  const SUDOERS = '/etc/sudoers.d/deployfile-e2e-rsroot';
  let nginx: lab.Nginx | undefined;
  let home: string | undefined;
  let project: string | undefined;
  const sites = {} as Record<SiteName, lab.DjangoSite>;
  const timings: string[] = [];
  let env: NodeJS.ProcessEnv;

  const fifoOf = (name: SiteName): string => path.join('/home', name, 'uwsgi.fifo');
  const touchFileOf = (name: SiteName): string => path.join('/home', name, 'reload');

  beforeAll(async () => {
    refuseOtherEmperors();
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo(ORIGIN, EXAMPLE);
    for (const name of SITES) {
      await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
      await lab.runAs(name, 'touch', [touchFileOf(name)]);
      sites[name] = await lab.setupDjangoSite(name, {
        origin,
        settingsPackage: 'example_site',
        processes: name === 'rsone' ? 1 : 2,
        // The master runs as the site user (tyrant mode), so it makes the FIFO in the site's home.
        extraIni: [`master-fifo = ${fifoOf(name)}`, 'lazy-apps = true', `touch-reload = ${touchFileOf(name)}`],
      });
    }
    rootIni = await lab.useRootVassal(sites.rsroot, 'example_site', [`touch-reload = ${touchFileOf('rsroot')}`]);
    fs.writeFileSync(SUDOERS, `rsroot ALL=(root) NOPASSWD: /usr/bin/touch ${rootIni}\n`, { mode: 0o440 });
    sshd = await lab.startSshd();
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    rootEmperor = await lab.startRootEmperor();
    nginx = await lab.startNginx(SITES.map((name) => ({ name, socket: sites[name].socketPath })));
    for (const name of SITES) await lab.waitForHttp(revisionUrl(name), (body, status) => status === 200 && body === origin.initialRevision, 60_000);

    ({ home, env } = operatorHome(sshd, 'deployfile-e2e-strategies-home-'));
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-e2e-strategies-project-'));
    const target = { host: lab.LOOPBACK, port: sshd.port, identityFile: key.privateKeyPath };
    // The strategy comes from the environment, so one deployfile serves every case.
    fs.writeFileSync(
      path.join(project, 'deployfile.ts'),
      `// Written by test/e2e/reload-strategies.e2e.test.ts.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars, type ReloadStrategy } from 'deployfile/tasks';
const server = ${JSON.stringify(target)};
const reload = (process.env.RELOAD_COMMAND ? { command: process.env.RELOAD_COMMAND } : process.env.RELOAD) as ReloadStrategy;
export default defineDeployfile<DjangoVars>({
  sites: {
    rsfifo: { ...server, vars: { settings: 'example_site', vassal: ${JSON.stringify(lab.vassalPath('rsfifo'))}, reload } },
    rsone: { ...server, vars: { settings: 'example_site', vassal: ${JSON.stringify(lab.vassalPath('rsone'))}, reload } },
    rsroot: { ...server, vars: { settings: 'example_site', vassal: ${JSON.stringify(lab.rootVassalPath('rsroot'))}, reload } },
  },
  tasks: { ...djangoTasks() },
});
`,
    );
  }, 240_000);

  afterAll(async () => {
    await nginx?.stop();
    await rootEmperor?.stop();
    await emperor?.stop();
    fs.rmSync(SUDOERS, { force: true });
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
    if (project) fs.rmSync(project, { recursive: true, force: true });
    if (timings.length) console.log(`reload verdicts by strategy:\n  ${timings.join('\n  ')}`);
  });

  function revisionUrl(name: SiteName): string {
    return `${nginx!.urls[name]}revision`;
  }

  const editWsgi = (change: (text: string) => string): void => lab.editOriginFile(origin, 'example_site/wsgi.py', change);

  /** Push a change to the origin and pull it on a site, as a deploy's pull would. */
  async function ship(message: string, edit: () => void, name: SiteName = 'rsfifo'): Promise<string> {
    edit();
    const revision = await lab.commitAndPush(origin, message);
    await lab.runAs(name, 'git', ['-C', sites[name].siteDir, 'pull', '-q', '--ff-only']);
    return revision;
  }

  async function reload(label: string, strategy: { RELOAD?: string; RELOAD_COMMAND?: string }, name: SiteName = 'rsfifo'): Promise<CliRun & { output: string }> {
    const result = await deploy(['run', 'touchVassalIni', '--site', name], { cwd: project, env: { ...env, ...strategy }, timeoutMs: RUN_MS });
    const output = result.stdout + result.stderr;
    const seconds = new RegExp(`\\[${name}\\] ${name} is back after ([\\d.]+)s`).exec(output)?.[1] ?? /\(([\d.]+)s after the (?:reload|touch)\)/.exec(output)?.[1];
    timings.push(`${label}: ${seconds ?? '?'}s (exit ${result.code})`);
    return { ...result, output };
  }

  function expectExit(result: CliRun & { output: string }, code: number): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  const served = (name: SiteName, revision: string) => lab.waitForHttp(revisionUrl(name), (b, s) => s === 200 && b === revision, 30_000);

  it("reload: 'fifo' writes r to the master FIFO, and the new revision is served as soon as the new workers answer", async () => {
    const revision = await ship('A change for the FIFO reload', () => editWsgi((py) => `${py}\n# fifo reload\n`));
    const result = await reload('fifo (graceful)', { RELOAD: 'fifo' });
    expectExit(result, 0);
    expect(result.output).toContain(`[rsfifo] $ write r to the master FIFO ${fifoOf('rsfifo')} (graceful reload)`);
    expect(result.output).toMatch(/\[rsfifo\] rsfifo is back after [\d.]+s: new uWSGI processes \(pids [\d,]+\)/);
    expect(result.output).toMatch(/reload verified [\d.]+s after the reload \(master FIFO, graceful\)/);
    await served('rsfifo', revision);
  });

  it("reload: 'chain' (lazy-apps, two workers) replaces the workers one at a time and serves the new revision", async () => {
    const revision = await ship('A change for the chain reload', () => editWsgi((py) => `${py}\n# chain reload\n`));
    const result = await reload('chain', { RELOAD: 'chain' });
    expectExit(result, 0);
    expect(result.output).toContain(`[rsfifo] $ write c to the master FIFO ${fifoOf('rsfifo')} (chain reload)`);
    expect(result.output).toMatch(/reload verified [\d.]+s after the reload \(master FIFO, chain\)/);
    await served('rsfifo', revision);
  });

  it("reload: 'chain' with one worker is refused before anything is written, saying why", async () => {
    const before = fs.statSync(lab.vassalPath('rsone')).mtimeMs;
    const result = await reload('chain, one worker', { RELOAD: 'chain' }, 'rsone');
    expectExit(result, 1);
    expect(result.output).toContain(`rsone: reload 'chain': not done, ${lab.vassalPath('rsone')} needs at least 2 workers (it has 1; processes = 2)`);
    expect(result.output).toContain('uWSGI issue #2001');
    expect(result.output).not.toContain('write c to the master FIFO');
    expect(fs.statSync(lab.vassalPath('rsone')).mtimeMs).toBe(before);
  });

  it("reload: 'touch-reload' touches the file the vassal names, not the ini", async () => {
    const ini = fs.statSync(lab.vassalPath('rsfifo')).mtimeMs;
    const revision = await ship('A change for touch-reload', () => editWsgi((py) => `${py}\n# touch-reload\n`));
    const result = await reload('touch-reload', { RELOAD: 'touch-reload' });
    expectExit(result, 0);
    expect(result.output).toContain(`[rsfifo] $ touch ${touchFileOf('rsfifo')} (the vassal's touch-reload)`);
    await served('rsfifo', revision);
    expect(fs.statSync(lab.vassalPath('rsfifo')).mtimeMs).toBe(ini);
  });

  it('reload: { command } runs the deployfile\'s own line, verified the same way', async () => {
    const revision = await ship('A change for a reload command', () => editWsgi((py) => `${py}\n# reload command\n`));
    const result = await reload('command', { RELOAD_COMMAND: `printf r > ${fifoOf('rsfifo')}` });
    expectExit(result, 0);
    expect(result.output).toContain(`[rsfifo] $ printf r > ${fifoOf('rsfifo')}`);
    expect(result.output).toMatch(/reload verified [\d.]+s after the reload \(reload command\)/);
    await served('rsfifo', revision);
  });

  it('a broken app reloaded through the FIFO is explained like a touched one: the cause, reproduced as the site user', async () => {
    const good = fs.readFileSync(path.join(EXAMPLE, 'example_site', 'wsgi.py'), 'utf8');
    await ship('Rename the wsgi callable', () => editWsgi((py) => py.replace('application = get_wsgi_application()', 'app = get_wsgi_application()')));
    const result = await reload('fifo, broken callable', { RELOAD: 'fifo' });
    expectExit(result, 1);
    expect(result.output).toContain("[rsfifo] ✖ touchVassalIni failed: rsfifo: the new code does not load: AttributeError: module 'example_site.wsgi' has no attribute 'application'");
    expect(result.output).toMatch(/s after the reload\)/);
    const revision = await ship('Restore wsgi.py', () => fs.writeFileSync(path.join(origin.workDir, 'example_site', 'wsgi.py'), good));
    expectExit(await reload('fifo, restored', { RELOAD: 'fifo' }), 0);
    await served('rsfifo', revision);
  });

  it('measured on one site in one run: the FIFO verdict against the emperor touch, and requests failed through nginx during each reload', async () => {
    const verdict = (output: string) => Number(/rsfifo is back after ([\d.]+)s/.exec(output)?.[1]);
    // What visitors see during a good reload: a GET every 50 ms through nginx while the strategy runs.
    const measured = async (label: string, reloadWith: { RELOAD: string }, change: string) => {
      await ship(`A change for ${label}`, () => editWsgi((py) => `${py}\n# ${change}\n`));
      const loop = startRequestLoop(revisionUrl('rsfifo'));
      const result = await reload(`measured: ${label}`, reloadWith);
      const requests = await loop.stop();
      expectExit(result, 0);
      expect(requests.total).toBeGreaterThan(0);
      return { seconds: verdict(result.output), requests: describeRequestLoop(requests) };
    };
    const touched = await measured('touch', { RELOAD: 'touch' }, 'touch, measured');
    const fifo = await measured('fifo', { RELOAD: 'fifo' }, 'fifo, measured');
    const chain = await measured('chain', { RELOAD: 'chain' }, 'chain, measured');
    // Reported, not asserted: timings belong in bench/ (printed with the other verdicts after the run).
    timings.push(`touch ${touched.seconds}s vs fifo ${fifo.seconds}s (chain ${chain.seconds}s)`);
    timings.push(`requests during touch: ${touched.requests}; fifo: ${fifo.requests}; chain: ${chain.requests}`);
    expect(Number.isFinite(touched.seconds) && Number.isFinite(fifo.seconds)).toBe(true);
  });

  describe('a vassal root owns, under an emperor not in tyrant mode', () => {
    it("reload: 'touch-reload' reloads it through the file the site user owns; the ini stays untouched", async () => {
      const ini = fs.statSync(rootIni).mtimeMs;
      const revision = await ship('A change for the root-owned vassal', () => editWsgi((py) => `${py}\n# root vassal, touch-reload\n`), 'rsroot');
      const result = await reload('root vassal: touch-reload', { RELOAD: 'touch-reload' }, 'rsroot');
      expectExit(result, 0);
      expect(result.output).toMatch(/\[rsroot\] rsroot is back after [\d.]+s: new uWSGI processes/);
      await served('rsroot', revision);
      expect(fs.statSync(rootIni).mtimeMs).toBe(ini);
    });

    it("reload: 'sudo-touch' touches the ini through a sudoers rule for exactly that; without the rule, it says what to add", async () => {
      const revision = await ship('A change for sudo-touch', () => editWsgi((py) => `${py}\n# root vassal, sudo-touch\n`), 'rsroot');
      const result = await reload('root vassal: sudo-touch', { RELOAD: 'sudo-touch' }, 'rsroot');
      expectExit(result, 0);
      expect(result.output).toContain(`[rsroot] $ sudo -n touch ${rootIni}`);
      await served('rsroot', revision);

      const rule = fs.readFileSync(SUDOERS, 'utf8');
      fs.rmSync(SUDOERS);
      try {
        const refused = await reload('root vassal: sudo-touch, no rule', { RELOAD: 'sudo-touch' }, 'rsroot');
        expectExit(refused, 1);
        expect(refused.output).toContain(`rsroot: could not reload (sudo -n touch ${rootIni}): sudo: a password is required.`);
        expect(refused.output).toContain(`<site> ALL=(root) NOPASSWD: /usr/bin/touch ${rootIni}`);
      } finally {
        fs.writeFileSync(SUDOERS, rule, { mode: 0o440 });
      }
    });

    it("the default touch on a root-owned ini is refused, untouched, naming the strategies that work", async () => {
      const ini = fs.statSync(rootIni).mtimeMs;
      const result = await reload('root vassal: touch', { RELOAD: 'touch' }, 'rsroot');
      expectExit(result, 1);
      expect(result.output).toContain(`it is owned by root:root (uid/gid 0)`);
      expect(result.output).toContain("reload it another way: reload: 'touch-reload' or 'sudo-touch'");
      expect(fs.statSync(rootIni).mtimeMs).toBe(ini);
    });
  });
});
