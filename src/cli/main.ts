import { createRequire } from 'node:module';
import { Command, CommanderError, Option } from 'commander';
import { quietWhenReaderLeaves } from './stdio.ts';

// Only commander is loaded up front: `deploy --help` must stay close to a bare
// `node` start, so the engine, ssh2 and listr2 are imported by the commands.
function packageVersion(): string {
  const require = createRequire(import.meta.url);
  // src/cli/ when run from source, dist/src/cli/ when built.
  for (const path of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = require(path) as { name?: string; version?: string };
      if (pkg.name === 'deployfile' && pkg.version) return pkg.version;
    } catch {
      // not at this depth
    }
  }
  return 'unknown';
}

export const EXIT_CODES_HELP = `
Exit codes:
  0    every site succeeded
  1    a task failed on at least one site, or the run was aborted
  2    usage error or broken deployfile (nothing ran)
  129  stopped by SIGHUP (the terminal was closed)
  130  interrupted by Ctrl-C (SIGINT)
  143  stopped by SIGTERM (e.g. a cancelled CI job)
A first Ctrl-C, SIGTERM or SIGHUP ends the running commands, releases the
locks, writes the history and prints the summary (128 + the signal's number,
as a shell reports it); a second one exits at once and leaves the locks.`;

export function buildProgram(): Command {
  const program = new Command('deploy')
    .description('Deploy sites over SSH, one Unix user per site, with tasks written in a typed deployfile.ts.')
    .version(packageVersion(), '-V, --version')
    .option('-f, --file <file>', 'deployfile to load (default: ./deployfile.ts, else the nearest in a parent directory)')
    .option('-F, --ssh-config <file>', 'ssh config to read instead of ~/.ssh/config and /etc/ssh/ssh_config, as ssh -F ("none": read none)')
    .option('--accept-new-host-keys', "connect to servers not yet in known_hosts and record their keys, like ssh's StrictHostKeyChecking=accept-new; changed keys are always refused")
    .showSuggestionAfterError(true)
    // Set before the subcommands are added: commander copies these settings to them.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) })
    .addHelpText(
      'after',
      `
Examples:
  $ deploy init                         write a deployfile.ts for the Django project here
  $ deploy list                         tasks and sites of ./deployfile.ts
  $ deploy run deploy                   run the "deploy" task on every site
  $ deploy run test push deploy -s web  several tasks, in order, on a group of sites
  $ deploy run deploy --dry-run         print the exact commands, connect to nothing
  $ deploy demo                         deploy the example site to a throwaway local target
${EXIT_CODES_HELP}`,
    );

  program
    .command('run')
    .description('run tasks, in the order given, on the selected sites')
    .argument('<task...>', 'task names from the deployfile (see: deploy list)')
    .option('-s, --site <names>', "comma-separated sites, groups or globs like 'shop-*' (default: all sites; an empty value is an error; env DEPLOY_SITE)")
    .option('-x, --exclude <names>', 'comma-separated sites, groups or globs to leave out (an empty value is an error; env DEPLOY_EXCLUDE)')
    .option('--shard <i/n>', 'keep the i-th of n stable slices of the selection, for CI matrices (env DEPLOY_SHARD)')
    .option('-y, --yes', 'answer yes to every c.confirm question (env DEPLOY_YES=1)')
    .addOption(
      new Option('--on-failure <mode>', 'when a command fails and nobody can be asked: abort the site, or skip the command and continue (env DEPLOY_ON_FAILURE)').choices(['abort', 'continue']),
    )
    .option('-p, --parallel <n>', 'sites run at once (default 5, or the --batch size; see below) (env DEPLOY_PARALLEL)')
    .option('--batch <n>', 'rolling batches of n sites: the next batch starts only when the previous one succeeded (env DEPLOY_BATCH)')
    .option('--max-failures <k>', 'start no new site after k sites failed (default: no limit; 1 with --batch) (env DEPLOY_MAX_FAILURES)')
    .option('-n, --dry-run', 'print the exact shell commands each site would run; connect to nothing')
    .option('-v, --verbose', 'stream every output line, prefixed with its site')
    .option('--json', 'print events as JSON lines on stdout, human output goes to stderr; see docs/events.md (env DEPLOY_JSON)')
    .option('--timeout <duration>', 'default per-command timeout, e.g. 10m; 0 is an error: leave it out for none (env DEPLOY_TIMEOUT)')
    .option('--deadline <duration>', 'bound the whole run, e.g. 30m: then it stops as on Ctrl-C and the sites cut short fail (exit 1) (env DEPLOY_DEADLINE)')
    .addHelpText(
      'after',
      `
Without a TTY (CI, pipes), or with CI set, output is plain lines prefixed
with [site], ending in a summary, and nothing ever waits for input: --yes
answers c.confirm questions (otherwise they are answered no), and
--on-failure decides what a failed command does (default: abort that site).
On a TTY, a failed command asks: retry, skip and continue, or abort; one
question at a time, naming its site, with answers that can apply to all.

--parallel defaults to 5: quick, yet a server shared by many sites stays
responsive while several install and reload at once, and the output stays
readable. Raise it freely for many servers: SSH handshakes are capped at 8
at once whatever --parallel says (sshd's default MaxStartups drops
unauthenticated connections beyond 10), and open connections don't count.

Selecting: deploy run deploy -s 'shop-*,web' -x shop-test --shard 2/4
An empty --site or --exclude (-s "$SITE" with SITE unset, --site=, -s ,)
is a usage error, never "every site"; leave the flag out for that. An
empty DEPLOY_SITE / DEPLOY_EXCLUDE counts as not set, and is said so.

--timeout bounds each command; --deadline bounds the run, including a task
that awaits something that never settles. When the run is stopped (Ctrl-C,
SIGTERM, SIGHUP, --deadline), a task with no command left running gets 1s
to finish, then its site is let go (lock released) and the summary names
the task that hung.
Run-once tasks (test, push) run once per process: with --shard, each
shard runs them; run them in a job of their own before the matrix.
${EXIT_CODES_HELP}`,
    )
    .action(async (tasks: string[], options: Record<string, unknown>, command: Command) => {
      const { deployRun } = await import('./run.ts');
      process.exitCode = await deployRun(tasks, { ...command.optsWithGlobals(), ...options });
    });

  program
    .command('init')
    .description("write a deployfile.ts (and a tsconfig.json if there is none) for the Django project in this directory")
    .option('--host <host>', 'the server the sites are on (asked on a TTY; needed without one)')
    .option('--site <names>', "comma-separated site names, each a Unix user on the server (default: the settings package manage.py names)")
    .option('--settings <package>', "the Django settings package (default: read from manage.py's DJANGO_SETTINGS_MODULE)")
    .option('--force', 'write over an existing deployfile.ts')
    .addHelpText(
      'after',
      `
Reads manage.py for the settings package and git's origin remote, asks for
the server and the sites on a TTY, writes deployfile.ts with the built-in
Django tasks, and prints the next commands. In CI or a script, give --host
(and --site); nothing is asked.

Example:
  $ npx deploy init --host web1.example.com --site alleged,shop
  $ npx deploy list`,
    )
    .action(async (options: Record<string, unknown>) => {
      const { initCommand } = await import('./init.ts');
      process.exitCode = await initCommand(options);
    });

  program
    .command('list')
    .description('list the tasks (with descriptions) and sites (user@host:port) of the deployfile')
    .action(async (_options: unknown, command: Command) => {
      const { listCommand } = await import('./list.ts');
      process.exitCode = await listCommand(command.optsWithGlobals());
    });

  program
    .command('unlock')
    .description("show who holds a site's deploy lock (~/.deployfile/lock on the server), then remove it")
    .argument('<site>', 'site name from the deployfile')
    .option('--force', 'remove the lock even when its holder is a process still running on this machine')
    .addHelpText(
      'after',
      '\nFor a deploy that died without letting go (killed, or its machine lost). A running deploy releases its lock itself, also on failure, Ctrl-C, SIGTERM and SIGHUP.\nWhen the holder is a process still running on this machine, unlock asks first on a TTY, and without one refuses (exit 1) unless --force.',
    )
    .action(async (site: string, _options: unknown, command: Command) => {
      const { unlockCommand } = await import('./unlock.ts');
      process.exitCode = await unlockCommand(site, command.optsWithGlobals<{ file?: string; force?: boolean }>());
    });

  program
    .command('history')
    .description("a site's deploys, newest first: time, operator, revision, tasks, outcome, duration")
    .argument('<site>', 'site name from the deployfile')
    .option('-n, --limit <n>', 'how many runs to show', '20')
    .option('--json', 'one JSON object per run, as stored in ~/.deployfile/history.jsonl on the server')
    .action(async (site: string, _options: unknown, command: Command) => {
      const { historyCommand } = await import('./history.ts');
      process.exitCode = await historyCommand(site, command.optsWithGlobals());
    });

  program
    .command('rollback')
    .description("put a site's previous healthy release back (releases layout): code, production settings and virtualenv together")
    .option('-s, --site <names>', 'comma-separated sites, groups or globs (default: all sites)')
    .option('-x, --exclude <names>', 'sites, groups or globs to leave out')
    .option('--to <release>', 'the release to go back to: its id, a unique prefix of it, or of its revision (default: the newest healthy release before the current one)')
    .option('-m, --message <text>', 'why, recorded with the rollback')
    .option('--migrate-back', "when the target's migrations differ, migrate back first with the current release's code (default: stop and print the commands)")
    .option('-y, --yes', 'roll back without asking (needed without a TTY)')
    .option('-n, --dry-run', 'print what would run; connect to nothing')
    .option('--json', 'print events as JSON lines on stdout')
    .addHelpText(
      'after',
      `
Shows the current and the target release of each site, asks (on a TTY),
switches atomically, reloads and checks the target serves; if it does not,
the release that was current is put back. The record on the server says
who rolled back, when and why (deploy run releases shows it).

Examples:
  $ deploy rollback -s shop
  $ deploy rollback -s shop --to 20261201T101533Z-bf23819 -m "checkout broken"
${EXIT_CODES_HELP}`,
    )
    .action(async (options: Record<string, unknown>, command: Command) => {
      const [{ deployRun }, { ROLLBACK_REQUEST }] = await Promise.all([import('./run.ts'), import('../core/rollback-request.ts')]);
      const request = { to: options.to as string | undefined, message: options.message as string | undefined, migrateBack: options.migrateBack === true };
      process.exitCode = await deployRun(['rollback'], { ...command.optsWithGlobals(), ...options }, { [ROLLBACK_REQUEST]: request });
    });

  program
    .command('releases')
    .description("list a site's releases (releases layout): state, revision, when, by whom, virtualenv, disk use")
    .argument('<site>', 'site name from the deployfile')
    .option('--json', 'the record as stored in ~/.deployfile/releases.jsonl on the server: one JSON event per line, oldest first')
    .action(async (site: string, options: { json?: boolean }, command: Command) => {
      if (options.json) {
        const { releasesJsonCommand } = await import('./releases.ts');
        process.exitCode = await releasesJsonCommand(site, command.optsWithGlobals());
        return;
      }
      const { deployRun } = await import('./run.ts');
      process.exitCode = await deployRun(['releases'], { ...command.optsWithGlobals(), site, json: undefined });
    });

  program
    .command('doctor')
    .description('check sites for the pitfalls of uWSGI, nginx and git, changing nothing; each check passes, warns or fails with its fix')
    .option('-s, --site <names>', "comma-separated sites, groups or globs like 'shop-*' (default: all sites; env DEPLOY_SITE)")
    .option('-x, --exclude <names>', 'comma-separated sites, groups or globs to leave out (env DEPLOY_EXCLUDE)')
    .option('-p, --parallel <n>', 'sites checked at once (default 5) (env DEPLOY_PARALLEL)')
    .option('--json', 'one JSON event per line on stdout, one "check" event per check; see docs/events.md (env DEPLOY_JSON)')
    .option('-v, --verbose', 'also stream the output of the commands doctor runs')
    .option('-n, --dry-run', 'print the commands doctor would run first, as which user; connect to nothing')
    .addHelpText(
      'after',
      `
Per site, as the site user (what uWSGI runs the app as):
  emperor           a running emperor watches the ini; tyrant mode or not
  vassal ini        exists; not owned by uid/gid 0 (tyrant mode refuses it);
                    owner the site user, group uwsgi; mode; no uid=/gid=
                    lines (tyrant), or uid= the site user (not tyrant)
  chdir, virtualenv the ini's chdir exists; its home's python runs
  uwsgi plugin      a plugin = python3 line where the uWSGI binary needs one
  wsgi import       module:callable imports in the virtualenv with the ini's
                    env (the production settings), else the traceback
  pip check         conflicts touching the app's requirements fail; others warn
  packages visible  REQUIREMENTS found, nothing in site-packages unreadable
  socket dir        group uwsgi, setgid, group-writable
  socket            exists, and nginx's user can connect to it
  nginx uwsgi_pass  a running nginx passes to this socket (nginx -T)
  git               origin reachable, work tree clean (the production
                    settings.py aside), HEAD = the last deployed revision
  disk space, serving  free space; the revision served and since when

Read-only: no lock is taken, nothing is written on the server (no history).
Through the site's admin account (admin: 'root' on the site, or admins:
{ host: user } in the deployfile) doctor connects as the admin, runs the
site checks with sudo -u <site> -H and the privileged ones as root (nginx -T,
connecting to the socket as nginx's user). Without one it connects as the
site user and reasons from permissions, or warns what it could not check.
The deployfile's own doctor task wins (djangoTasks() includes one with its
options). Needs python3 on the server. See docs/doctor.md.

Exit codes: 0 when no check failed (warnings allowed), 1 when a check failed
on some site (or a site could not be reached), 2 usage error; 129/130/143
when stopped by a signal, as for deploy run.

Examples:
  $ deploy doctor                  every site
  $ deploy doctor -s shop --json   one site, one JSON event per check
`,
    )
    .action(async (options: Record<string, unknown>, command: Command) => {
      const { doctorCommand } = await import('./doctor.ts');
      process.exitCode = await doctorCommand({ ...command.optsWithGlobals(), ...options });
    });

  program
    .command('plan')
    .description('show what a deploy would change on each site (commits, pip, static files, migrations, settings), changing nothing')
    .option('-s, --site <names>', "comma-separated sites, groups or globs like 'shop-*' (default: all sites; env DEPLOY_SITE)")
    .option('-x, --exclude <names>', 'comma-separated sites, groups or globs to leave out (env DEPLOY_EXCLUDE)')
    .option('-p, --parallel <n>', 'sites planned at once (default 5) (env DEPLOY_PARALLEL)')
    .option('--json', 'one JSON document on stdout (docs/plan.md); progress on stderr')
    .option('-v, --verbose', 'also stream the output of the commands plan runs')
    .addHelpText(
      'after',
      `
Per site, against what \`deploy run deploy\` would ship (the HEAD of the
site's working copy, which deploy pushes):
  commits       the revision the site is at and the commits a deploy would
                bring (at most 10, then a count); "up to date" when equal;
                a warning when the server is ahead or diverged, or has local
                edits that would stop the deploy at fetch
  requirements  unchanged since the last install (pip skipped), or the
                requirements added, removed and changed, and what pip
                install --dry-run says it would install
  static files  whether collectstatic would run or be skipped
  migrations    the migration files the new revision adds, per app, and
                those that cannot be reversed (RunPython without
                reverse_code, RunSQL without reverse_sql)
  settings      a unified diff of settings.py when the production settings
                would change it
  working copy  uncommitted changes (push would refuse), not yet pushed

Read-only: no lock, no history, no git fetch on the server or here (the
remote is asked with git ls-remote); the tests are not run. See docs/plan.md.

Exit codes: 0 no site would change, 3 at least one would, 1 a site could
not be planned, 2 usage error; 129/130/143 when stopped by a signal.

Examples:
  $ deploy plan                         every site, then a table
  $ deploy plan -s shop --json | jq .   one site, one JSON document
  $ deploy plan > plan.txt; if [ $? -eq 3 ]; then deploy run deploy; fi
                                        deploy only when something would change
`,
    )
    .action(async (options: Record<string, unknown>, command: Command) => {
      const { planCommand } = await import('./plan.ts');
      process.exitCode = await planCommand({ ...command.optsWithGlobals(), ...options });
    });

  program
    .command('provision')
    .description("set sites up on their servers through their admin accounts (user, keys, code, virtualenv, vassal, nginx), then deploy them; see docs/provision.md")
    .requiredOption('-s, --site <names>', 'comma-separated sites, groups or globs to provision (required: never every site by default)')
    .option('-x, --exclude <names>', 'sites, groups or globs to leave out')
    .option('-y, --yes', 'apply the plans without asking (needed without a TTY; env DEPLOY_YES=1)')
    .option('-p, --parallel <n>', 'sites provisioned at once (default 5)')
    .option('--json', 'print events as JSON lines on stdout (one run:end per pass)')
    .option('--timeout <duration>', 'per-command timeout, e.g. 10m')
    .addHelpText(
      'after',
      `
For each site: inspects the server through the site's admin account (the
site's admin, or the deployfile's admins[host]: root, or a user with sudo,
whose password is DEPLOY_SUDO_PASSWORD or asked on a TTY), prints what
exists, what it will do and the diff of every file it writes, asks (--yes
in CI; without either nothing changes), applies. Then, as the site user,
the first deploy (the deployfile's deploy task) and a check that the site
answers through nginx. A second run finds nothing to change and says so.

Examples:
  $ deploy provision -s shop
  $ deploy provision -s shop,blog --yes
${EXIT_CODES_HELP}`,
    )
    .action(async (options: Record<string, unknown>, command: Command) => {
      const { provisionCommand } = await import('./provision.ts');
      process.exitCode = await provisionCommand({ ...command.optsWithGlobals(), ...options });
    });

  program
    .command('demo')
    .description('deploy the example Django site to a throwaway local target (no server of yours needed)')
    .option('--keep', 'keep the temporary target after the demo')
    .action(async (options: Record<string, unknown>) => {
      const { demoCommand } = await import('./demo.ts');
      process.exitCode = await demoCommand(options);
    });

  return program;
}

/** Entry point of the `deploy` binary. */
export async function main(argv: string[] = process.argv): Promise<void> {
  quietWhenReaderLeaves();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with code 0; usage errors get 2.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    throw error;
  }
}
