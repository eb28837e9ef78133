/**
 * Lab by hand or for the benchmark (root, Debian 12):
 *
 *   npx jiti test/lab/cli.ts up --sites alleged,bravo [--from DIR] [--settings PKG] [--ssh-port N]
 *   npx jiti test/lab/cli.ts status
 *   npx jiti test/lab/cli.ts down [--purge]
 *
 * `up` replaces a running lab and leaves its daemons running after it exits;
 * everything it prints is also in labDir()/lab.json for scripts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as lab from './lab.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface LabState {
  labDir: string;
  ssh: { host: string; port: number; pid: number; knownHostsPath: string; hostKeyFingerprints: string[] };
  operatorKey: { privateKeyPath: string; publicKeyPath: string };
  emperor: { pid: number; logPath: string };
  nginx: { pid: number; errorLogPath: string };
  sites: Record<
    string,
    { url: string; port: number; origin: string; workDir: string; revision: string; siteDir: string; venvDir: string; vassalPath: string; socketPath: string; logPath: string }
  >;
}

async function up(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sites: { type: 'string', default: 'alleged,bravo' },
      from: { type: 'string', default: path.join(repoRoot, 'examples', 'django-site') },
      settings: { type: 'string', default: 'example_site' },
      'ssh-port': { type: 'string' },
    },
  });
  const names = values.sites.split(',').map((s) => s.trim()).filter(Boolean);
  const say = (s: string) => process.stderr.write(`lab: ${s}\n`);

  await lab.teardown();
  const key = await lab.createOperatorKey();
  const sites: LabState['sites'] = {};
  const made: { site: lab.DjangoSite; origin: lab.OriginRepo }[] = [];
  for (const name of names) {
    say(`site ${name}: user, origin, clone, virtualenv, vassal`);
    await lab.createSiteUser(name, { authorizedKeys: [key.publicKey] });
    const origin = await lab.createOriginRepo(name, values.from);
    made.push({ origin, site: await lab.setupDjangoSite(name, { origin, settingsPackage: values.settings }) });
  }
  say('starting sshd, uWSGI emperor, nginx');
  const sshd = await lab.startSshd({ port: values['ssh-port'] ? Number(values['ssh-port']) : undefined });
  const emperor = await lab.startEmperor();
  const nginx = await lab.startNginx(made.map(({ site }) => ({ name: site.name, socket: site.socketPath, staticRoot: path.join(site.user.home, 'static') })));
  for (const { site, origin } of made) {
    const url = nginx.urls[site.name]!;
    await lab.waitForHttp(url, (_b, status) => status === 200, 60_000);
    sites[site.name] = {
      url,
      port: nginx.ports[site.name]!,
      origin: origin.barePath,
      workDir: origin.workDir,
      revision: origin.initialRevision,
      siteDir: site.siteDir,
      venvDir: site.venvDir,
      vassalPath: site.vassalPath,
      socketPath: site.socketPath,
      logPath: site.logPath,
    };
  }
  const state: LabState = {
    labDir: lab.labDir(),
    ssh: { host: sshd.host, port: sshd.port, pid: sshd.pid, knownHostsPath: sshd.knownHostsPath, hostKeyFingerprints: sshd.hostKeyFingerprints },
    operatorKey: { privateKeyPath: key.privateKeyPath, publicKeyPath: key.publicKeyPath },
    emperor: { pid: emperor.pid, logPath: emperor.logPath },
    nginx: { pid: nginx.pid, errorLogPath: nginx.errorLogPath },
    sites,
  };
  fs.writeFileSync(lab.labStatePath(), JSON.stringify(state, null, 2) + '\n');
  print(state);
}

function print(s: LabState): void {
  const lines = [
    `lab dir      ${s.labDir}   (state: ${lab.labStatePath()})`,
    `ssh          ${s.ssh.host}:${s.ssh.port}`,
    `key          ${s.operatorKey.privateKeyPath}`,
    `known_hosts  ${s.ssh.knownHostsPath}`,
    `emperor log  ${s.emperor.logPath}`,
    '',
  ];
  for (const [name, site] of Object.entries(s.sites)) {
    lines.push(
      `site ${name}`,
      `  http       ${site.url}`,
      `  ssh        ${lab.sshArgv({ keyPath: s.operatorKey.privateKeyPath, port: s.ssh.port, user: name }).join(' ')}`,
      `  origin     ${site.origin}  (work clone ${site.workDir})`,
      `  code       ${site.siteDir}  venv ${site.venvDir}`,
      `  vassal     ${site.vassalPath}  log ${site.logPath}`,
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  const why = lab.labUnavailableReason();
  if (why && cmd !== 'help') throw new Error(`lab unavailable: ${why}`);
  switch (cmd) {
    case 'up':
      return up(rest);
    case 'down': {
      const { values } = parseArgs({ args: rest, options: { purge: { type: 'boolean', default: false } } });
      if (values.purge) await lab.purgeLab();
      else {
        await lab.teardown();
        fs.rmSync(lab.labStatePath(), { force: true });
      }
      process.stdout.write(values.purge ? 'lab stopped and removed (users, vassals, lab dir)\n' : 'lab stopped\n');
      return;
    }
    case 'status': {
      if (!fs.existsSync(lab.labStatePath())) {
        process.stdout.write('lab is down\n');
        return;
      }
      const state = JSON.parse(fs.readFileSync(lab.labStatePath(), 'utf8')) as LabState;
      print(state);
      // lab.json outlives a reboot or a crashed daemon; say so rather than print dead ports.
      const dead = (['ssh', 'emperor', 'nginx'] as const).filter((k) => !lab.isAlive(state[k].pid));
      if (dead.length) {
        process.stdout.write(`NOT RUNNING: ${dead.join(', ')} (run up again)\n`);
        process.exitCode = 1;
      }
      return;
    }
    default:
      process.stdout.write('usage: npx jiti test/lab/cli.ts up [--sites a,b] [--from DIR] [--settings PKG] [--ssh-port N] | status | down [--purge]\n');
      if (cmd !== 'help') process.exitCode = 2;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`lab: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
