// deploy provision, end to end, on the blog post's layout (a uWSGI emperor in
// tyrant mode with an app.skel beside its vassals, one Unix user per site,
// nginx including a conf.d), through an admin account with sudo (a password,
// given as DEPLOY_SUDO_PASSWORD):
//   - without --yes and without a TTY it prints the plan and its diffs, and
//     changes nothing;
//   - from nothing (no Unix user) to serving its revision through nginx;
//   - a second provision changes nothing (no file rewritten, no question, no
//     deploy) and says so;
//   - a provision that fails at the nginx step (nginx -t fails) leaves nginx
//     serving the other sites as before, with no broken file in its config.
//
// Run as root on Debian 12, in a lab of its own:
//   DEPLOYFILE_LAB_DIR=/var/tmp/deployfile-lab-prov DEPLOYFILE_VASSAL_DIR=/etc/uwsgi/prov.d \
//     npx vitest run --config vitest.e2e.config.ts test/e2e/provision.e2e.test.ts
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type CliRun } from '../helpers/cli.ts';
import { refuseOtherEmperors } from '../lab/emperors.ts';
import * as lab from '../lab/lab.ts';
import { operatorHome } from '../lab/operator-home.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = path.join(ROOT, 'examples', 'django-site');
const ADMIN = 'provadmin';
const ADMIN_PASSWORD = 'provadmin-sudo-password';
const SUDOERS = `/etc/sudoers.d/deployfile-e2e-${ADMIN}`;
/** Provisioned by the tests: they must not exist before. */
const NEW = 'provnew';
const BAD = 'provbad';
/** Provisioned through root itself (no sudo): its admin is 'root'; its code comes over SSH through the forwarded agent. */
const ROOTED = 'provroot';
/** Serves the origin over SSH, to the operator's key only. */
const GIT = 'provgit';
/** Set up by the lab, served by nginx before and after. */
const OTHER = 'provother';
const RUN_MS = 240_000;

const skipReason = lab.labUnavailableReason() ?? (fs.existsSync(path.join(EXAMPLE, 'manage.py')) ? undefined : `${EXAMPLE} is missing`);

async function removeUser(name: string): Promise<void> {
  if (!(await lab.lookupUser(name))) return;
  await lab.run('userdel', ['-r', name]).catch(() => lab.run('userdel', ['-r', '-f', name]).catch(() => undefined));
}

describe.skipIf(skipReason !== undefined)(`deploy provision${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let key: lab.OperatorKey;
  let origin: lab.OriginRepo;
  let sshd: lab.Sshd | undefined;
  let emperor: lab.Emperor | undefined;
  let nginx: lab.Nginx | undefined;
  let other: lab.DjangoSite;
  let home: string | undefined;
  let ops: string | undefined;
  let env: NodeJS.ProcessEnv;
  let agent: ChildProcess | undefined;
  let agentSocket: string;
  let gitUrl: string;
  const confd = path.join(lab.labDir(), 'nginx', 'conf.d');
  const skeleton = path.join(lab.VASSAL_DIR, 'app.skel');
  const ports = { [NEW]: 0, [BAD]: 0, [ROOTED]: 0 };
  /**
   * root's authorized_keys for the lab's sshd only (a Match block): /root/.ssh
   * is never touched. Not under the lab dir: sshd's StrictModes refuses a key
   * file below a world-writable directory (/var/tmp).
   */
  const rootKeysDir = `/run/deployfile-e2e-${path.basename(lab.labDir())}`;
  const rootKeys = path.join(rootKeysDir, 'root_authorized_keys');

  beforeAll(async () => {
    refuseOtherEmperors();
    // Left by an earlier run that died: these names are this spec's.
    for (const name of [NEW, BAD, ROOTED, GIT]) {
      await removeUser(name);
      fs.rmSync(lab.vassalPath(name), { force: true });
    }
    fs.rmSync(confd, { recursive: true, force: true });
    key = await lab.createOperatorKey();
    origin = await lab.createOriginRepo(NEW, EXAMPLE);

    // The admin account: key login, sudo with its password.
    await lab.createSiteUser(ADMIN, { authorizedKeys: [key.publicKey] });
    await lab.run('chpasswd', [], { input: `${ADMIN}:${ADMIN_PASSWORD}\n` });
    fs.writeFileSync(SUDOERS, `${ADMIN} ALL=(ALL:ALL) ALL\n`, { mode: 0o440 });
    await lab.run('visudo', ['-c', '-f', SUDOERS]);

    // Another site on the same nginx, set up by hand as the blog post did.
    const otherOrigin = await lab.createOriginRepo(OTHER, EXAMPLE);
    await lab.createSiteUser(OTHER, { authorizedKeys: [key.publicKey] });
    other = await lab.setupDjangoSite(OTHER, { origin: otherOrigin, settingsPackage: 'example_site', processes: 1 });
    await lab.runAs(OTHER, 'cp', ['example_site/settings_production.py', 'example_site/settings.py'], { cwd: other.siteDir });

    // The emperor's skeleton, beside its vassals: %n is the vassal's name, the site's.
    fs.mkdirSync(lab.VASSAL_DIR, { recursive: true });
    fs.writeFileSync(
      skeleton,
      [
        '[uwsgi]',
        'plugin = python3',
        'master = true',
        'processes = 1',
        'chdir = /home/%n/Sites/%n',
        'virtualenv = /home/%n/virtualenvs/%n',
        'module = example_site.wsgi:application',
        `socket = ${path.dirname(lab.socketPath('x'))}/%n.sock`,
        'chmod-socket = 660',
        'vacuum = true',
        'env = HOME=/home/%n',
        'env = LANG=C.UTF-8',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );

    fs.mkdirSync(rootKeysDir, { recursive: true, mode: 0o755 });
    fs.writeFileSync(rootKeys, `${key.publicKey}\n`, { mode: 0o600 });
    sshd = await lab.startSshd({ extraConfig: `PermitRootLogin prohibit-password\nMatch User root\n  AuthorizedKeysFile ${rootKeys}\n` });
    emperor = await lab.startEmperor();
    refuseOtherEmperors(emperor.pid);
    nginx = await lab.startNginx([{ name: OTHER, socket: other.socketPath }], { includeDir: confd });
    await lab.waitForHttp(`${nginx.urls[OTHER]}revision`, (body, status) => status === 200 && body === otherOrigin.initialRevision, 60_000);
    ports[NEW] = await lab.freePort();
    ports[BAD] = await lab.freePort();
    ports[ROOTED] = await lab.freePort();

    // The origin over SSH, for the clone through the forwarded agent: only the agent holds a key it accepts.
    await lab.createSiteUser(GIT, { authorizedKeys: [key.publicKey] });
    await lab.runAs(GIT, 'git', ['clone', '-q', '--bare', origin.barePath, `/home/${GIT}/prov.git`]);
    gitUrl = `ssh://${GIT}@${lab.LOOPBACK}:${sshd.port}/home/${GIT}/prov.git`;

    ({ home, env } = operatorHome(sshd, 'deployfile-prov-home-'));
    agentSocket = path.join(home, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !fs.existsSync(agentSocket); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    await lab.run('ssh-add', ['-q', key.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: agentSocket } });
    env.DEPLOY_SUDO_PASSWORD = ADMIN_PASSWORD;
    ops = fs.mkdtempSync(path.join(os.tmpdir(), 'deployfile-prov-ops-'));
    fs.writeFileSync(path.join(ops, 'deployfile.ts'), deployfileText());
  });

  afterAll(async () => {
    agent?.kill();
    await nginx?.stop();
    await emperor?.stop();
    await sshd?.stop();
    for (const name of [NEW, BAD, ROOTED, OTHER, ADMIN, GIT]) {
      fs.rmSync(lab.vassalPath(name), { force: true });
      await removeUser(name);
    }
    fs.rmSync(skeleton, { force: true });
    fs.rmSync(SUDOERS, { force: true });
    fs.rmSync(rootKeysDir, { recursive: true, force: true });
    fs.rmSync(confd, { recursive: true, force: true });
    for (const dir of [home, ops]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function deployfileText(): string {
    const server = { host: lab.LOOPBACK, port: sshd!.port, identityFile: key.privateKeyPath };
    const site = (name: string, listen: string, more = '', vars = '') =>
      `    ${name}: { ...server, ${more}vars: { settings: 'example_site', localDir: ${JSON.stringify(origin.workDir)}, listen: ${JSON.stringify(listen)}, serverName: 'localhost'${vars} } },`;
    return `// Written by test/e2e/provision.e2e.test.ts.
import { defineDeployfile } from 'deployfile';
import { djangoTasks, type DjangoVars } from 'deployfile/tasks';

const server = ${JSON.stringify(server)};

export default defineDeployfile<DjangoVars>({
  admins: { ${JSON.stringify(lab.LOOPBACK)}: ${JSON.stringify(ADMIN)} },
  sites: {
${site(NEW, `${lab.LOOPBACK}:${ports[NEW]}`)}
    // A typo'd port: nginx -t refuses the block.
${site(BAD, `${lab.LOOPBACK}:99999`)}
    // Through root, the code over SSH with the operator's forwarded agent.
${site(ROOTED, `${lab.LOOPBACK}:${ports[ROOTED]}`, "admin: 'root', forwardAgent: true, ", `, origin: ${JSON.stringify(gitUrl)}, gitKnownHosts: ${JSON.stringify(sshd!.knownHostsLines)}`)}
  },
  tasks: djangoTasks({
    apps: ['pages'],
    vassal: ${JSON.stringify(`${lab.VASSAL_DIR}/{site}.ini`)},
    // The lab has no network: Debian's python3-django serves the requirements.
    virtualenvArgs: ['--system-site-packages'],
    nginxFile: ${JSON.stringify(`${confd}/{site}.conf`)},
    nginxEnabled: false,
    nginxTest: ${JSON.stringify(nginx!.testCommand)},
    nginxReload: ${JSON.stringify(nginx!.reloadCommand)},
  }),
});
`;
  }

  async function run(args: string[], more: NodeJS.ProcessEnv = {}): Promise<CliRun & { output: string; ms: number }> {
    const started = Date.now();
    const result = await deploy(args, { cwd: ops, env: { ...env, ...more }, timeoutMs: RUN_MS });
    if (process.env.DEPLOYFILE_E2E_OUTPUT) fs.appendFileSync(process.env.DEPLOYFILE_E2E_OUTPUT, `===== deploy ${args.join(' ')}: exit ${result.code}\n${result.stdout}${result.stderr}\n`);
    return { ...result, output: result.stdout + result.stderr, ms: Date.now() - started };
  }

  function expectExit(result: CliRun & { output: string }, code: number): void {
    expect(result.code, `deploy exited ${result.code}, expected ${code}; output:\n${result.output}`).toBe(code);
  }

  function mtimes(files: string[]): Record<string, number> {
    return Object.fromEntries(files.map((file) => [file, fs.statSync(file).mtimeMs]));
  }

  it('without --yes and without a TTY: prints what it would do with the diffs, changes nothing, exit 1', async () => {
    const result = await run(['provision', '-s', NEW]);
    expectExit(result, 1);
    expect(result.output).toContain(`[${NEW}] plan for ${NEW} (${NEW} on ${lab.LOOPBACK}, through ${ADMIN}):`);
    expect(result.output).toContain(`will: create user ${NEW} and its group ${NEW}`);
    expect(result.output).toContain(`will: clone ${origin.barePath} (main) into /home/${NEW}/Sites/${NEW} as ${NEW}`);
    expect(result.output).toContain(`will: write the vassal ${lab.vassalPath(NEW)} from ${skeleton} (${NEW}:uwsgi 0644`);
    // The files' diffs, line by line.
    expect(result.output).toContain(`+++ ${lab.vassalPath(NEW)} (new)`);
    expect(result.output).toContain('+chdir = /home/%n/Sites/%n');
    expect(result.output).toContain(`+++ ${confd}/${NEW}.conf (new)`);
    expect(result.output).toContain(`+        uwsgi_pass unix:${lab.socketPath(NEW)};`);
    expect(result.output).toContain(`${NEW}: not provisioned: the plan was not accepted (without a terminal, --yes accepts it); nothing was changed`);
    expect(await lab.lookupUser(NEW)).toBeUndefined();
    expect(fs.existsSync(lab.vassalPath(NEW))).toBe(false);
    expect(fs.existsSync(path.join(confd, `${NEW}.conf`))).toBe(false);
  });

  it('provisions a site from nothing (no Unix user) to serving its revision through nginx', async () => {
    const result = await run(['provision', '-s', NEW, '--yes']);
    expectExit(result, 0);
    console.log(`provision of ${NEW} from nothing: ${result.ms} ms`);
    for (const done of [`create user ${NEW}`, 'add 1 key to', `git config --global --add safe.directory ${origin.barePath}`, 'create the virtualenv', 'pip install -r REQUIREMENTS', 'write the vassal', 'write the nginx server block']) {
      expect(result.output).toContain(`done: ${done}`);
    }
    expect(result.output).toContain('nginx -t passed; nginx reloaded');
    expect(result.output).toContain(`deploy provision: first deploy of ${NEW}, as the site user, then a check through nginx`);
    expect(result.output).toContain(`${NEW} answers HTTP 200 through nginx`);

    // What a visitor gets through nginx: the origin's revision, with production settings.
    const url = `http://${lab.LOOPBACK}:${ports[NEW]}/`;
    expect((await lab.waitForHttp(`${url}revision`, (body, status) => status === 200 && body === origin.initialRevision)).body).toBe(origin.initialRevision);
    expect((await lab.waitForHttp(`${url}settings`)).body).toBe('production');
    // As the blog post's recipe leaves it.
    const user = (await lab.lookupUser(NEW))!;
    const vassal = fs.statSync(lab.vassalPath(NEW));
    expect([vassal.uid, (vassal.mode & 0o7777).toString(8)]).toEqual([user.uid, '644']);
    expect((await lab.run('stat', ['-c', '%U:%G', lab.vassalPath(NEW)])).stdout.trim()).toBe(`${NEW}:uwsgi`);
    expect((await lab.run('getent', ['shadow', NEW])).stdout.split(':')[1]).toBe('*');
    // The admin's connection took no deploy lock and wrote no history as if it were a site's deploy.
    expect(fs.existsSync(path.join('/home', ADMIN, '.deployfile', 'history.jsonl'))).toBe(false);
    expect(fs.readFileSync(path.join(user.home, '.deployfile', 'history.jsonl'), 'utf8')).toContain('"outcome":"ok"');
  });

  it('a second provision changes nothing, asks nothing, deploys nothing, and says so', async () => {
    const user = (await lab.lookupUser(NEW))!;
    const files = [lab.vassalPath(NEW), path.join(confd, `${NEW}.conf`), path.join(user.home, '.ssh', 'authorized_keys'), path.join(user.home, '.gitconfig'), path.join(user.home, 'virtualenvs', NEW, 'bin', 'python')];
    const before = mtimes(files);
    const history = fs.readFileSync(path.join(user.home, '.deployfile', 'history.jsonl'), 'utf8');
    const result = await run(['provision', '-s', NEW, '--yes']);
    expectExit(result, 0);
    console.log(`second provision of ${NEW}: ${result.ms} ms`);
    expect(result.output).toContain(`[${NEW}]   nothing to change`);
    expect(result.output).toContain(`${NEW}: nothing to change; it answers HTTP 200 through nginx`);
    expect(result.output).toContain('deploy provision: nothing to change');
    expect(result.output).not.toContain('will:');
    expect(result.output).not.toContain('apply the');
    expect(result.output).not.toContain('first deploy');
    expect(mtimes(files)).toEqual(before);
    expect(fs.readFileSync(path.join(user.home, '.deployfile', 'history.jsonl'), 'utf8')).toBe(history);
  });

  it('through root itself (admin: root, no sudo), the code cloned over SSH through the forwarded agent: from nothing to serving its revision', async () => {
    const result = await run(['provision', '-s', ROOTED, '--yes'], { SSH_AUTH_SOCK: agentSocket });
    expectExit(result, 0);
    expect(result.output).toContain(`[${ROOTED}] plan for ${ROOTED} (${ROOTED} on ${lab.LOOPBACK}, through root):`);
    expect(result.output).toContain(`done: create user ${ROOTED}`);
    expect(result.output).toContain(`done: add 3 git host keys to /home/${ROOTED}/.ssh/known_hosts`);
    expect(result.output).toContain(`done: clone ${gitUrl} (main) into /home/${ROOTED}/Sites/${ROOTED} as root through the admin's forwarded agent, then chown -R ${ROOTED}`);
    // The checkout is the site user's own: git needs no safe.directory for it.
    expect(result.output).not.toContain('safe.directory');
    expect(result.output).not.toContain('sudo');
    expect((await lab.runAs(ROOTED, 'git', ['-C', `/home/${ROOTED}/Sites/${ROOTED}`, 'remote', 'get-url', 'origin'])).stdout.trim()).toBe(gitUrl);
    expect((await lab.waitForHttp(`http://${lab.LOOPBACK}:${ports[ROOTED]}/revision`, (body, status) => status === 200 && body === origin.initialRevision)).body).toBe(origin.initialRevision);
    // The site user's files are its own (made through su), not root's.
    expect((await lab.run('stat', ['-c', '%U', `/home/${ROOTED}/Sites/${ROOTED}`, `/home/${ROOTED}/.ssh/authorized_keys`, `/home/${ROOTED}/virtualenvs/${ROOTED}`])).stdout.trim().split('\n')).toEqual([ROOTED, ROOTED, ROOTED]);
  });

  it('a provision that fails at the nginx step leaves nginx serving the other sites as before, with no broken file in its config', async () => {
    const nginxPid = nginx!.pid;
    const result = await run(['provision', '-s', BAD, '--yes']);
    expectExit(result, 1);
    expect(result.output).toContain(`${BAD}: provision failed at the nginx server block ${confd}/${BAD}.conf:`);
    expect(result.output).toContain('nginx -t failed with the new server block:');
    expect(result.output).toContain('the previous configuration is back and passes nginx -t; nginx was not reloaded');
    expect(result.output).toContain(
      `done: user ${BAD}, authorized_keys, safe.directory ${origin.barePath}, clone into /home/${BAD}/Sites/${BAD}, virtualenv /home/${BAD}/virtualenvs/${BAD}, requirements, vassal ${lab.vassalPath(BAD)}\n`,
    );
    expect(result.output).toContain('not done: nothing else');
    expect(result.output).not.toContain('first deploy');

    // Nothing of the block is left in nginx's configuration, which still passes its test.
    expect(fs.readdirSync(confd).sort()).toEqual([`${NEW}.conf`, `${ROOTED}.conf`]);
    await lab.run('sh', ['-c', nginx!.testCommand]);
    // The same nginx, never reloaded with the broken block, serves the other sites as before.
    expect(lab.isAlive(nginxPid)).toBe(true);
    expect((await lab.waitForHttp(`${nginx!.urls[OTHER]}settings`)).body).toBe('production');
    expect((await lab.waitForHttp(`http://${lab.LOOPBACK}:${ports[NEW]}/revision`)).body).toBe(origin.initialRevision);
    // The vassal written before the nginx step is complete and the emperor's to run: provbad:uwsgi 0644.
    expect((await lab.run('stat', ['-c', '%U:%G %a', lab.vassalPath(BAD)])).stdout.trim()).toBe(`${BAD}:uwsgi 644`);
  });
});
