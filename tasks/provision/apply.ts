/**
 * The plan's steps, run in order through the admin account: as root (root
 * itself, or sudo) for the account, the socket directory, the vassal and
 * nginx; as the site user (sudo -u, or su from root) for what must be the
 * site user's: its keys, git config, checkout, virtualenv. A failed step
 * stops the rest, and the error says what was done and what was not.
 */
import { sh, type Context, type Result, type RunOptions, type ShellCommand } from '../../src/index.ts';
import { NGINX_SCRIPT, VASSAL_SCRIPT } from './nginx.ts';
import type { Plan, Step } from './plan.ts';

/** Runs commands as root and as the site user through the admin account. */
export interface As {
  root(command: ShellCommand, options?: RunOptions): Promise<Result>;
  user(user: string, command: ShellCommand, options?: RunOptions): Promise<Result>;
}

/**
 * Root's and the site user's commands through the admin account: plain when
 * the admin is root (and `su` to the site user), else `sudo` (and
 * `sudo -u`), with the sudo password `c.sudo` learns. Site-user commands start
 * in that user's home.
 */
export function asAdmin(c: Context): As {
  const warn = c.warnOnly();
  const isRoot = c.site.user === 'root';
  return {
    root: (command, options = {}) => (isRoot ? warn.run(command, options) : warn.sudo(command, options)),
    user: (user, command, options = {}) =>
      isRoot ? warn.run(sh`su -s /bin/sh -c ${`cd && ${command.text}`} - ${user}`, options) : warn.sudo(sh`cd && ${command}`, { ...options, user }),
  };
}

/** What a step runs. */
function stepCommand(step: Step, as: As): Promise<Result> {
  switch (step.kind) {
    case 'createUser':
      // '*', not useradd's '!': sshd with UsePAM no refuses a '!' account even with a key.
      return as.root(sh`useradd --create-home ${step.groupExists ? ['--gid', step.user] : ['--user-group']} --shell ${step.shell} --password '*' ${step.user}`);
    case 'unlockPassword':
      return as.root(sh`usermod --password '*' ${step.user}`);
    case 'authorizedKeys':
      return as.user(
        step.user,
        // A file whose last line has no newline gets one first, so the new key starts a line of its own.
        sh`umask 077 && mkdir -p .ssh && f=.ssh/authorized_keys && if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi && cat >> "$f"`,
        { stdin: step.add.map((line) => `${line}\n`).join('') },
      );
    case 'safeDirectory':
      return as.user(step.user, sh`git config --global --add safe.directory ${step.path}`);
    case 'clone':
      return as.user(step.user, sh`mkdir -p ${parentOf(step.codeDir)} && git clone --quiet ${step.branch ? ['--branch', step.branch] : []} ${step.origin} ${step.codeDir}`);
    case 'virtualenv':
      return as.user(step.user, sh`mkdir -p ${parentOf(step.virtualenv)} && ${step.python} -m venv ${step.args} ${step.virtualenv}`);
    case 'requirements':
      // The copy is where installRequirements looks: the first deploy then skips an install just made.
      return as.user(
        step.user,
        sh`cd ${step.codeDir} && . ${`${step.virtualenv}/bin/activate`} && pip install --disable-pip-version-check -r ${step.requirements} && mkdir -p ${parentOf(step.installedCopy)} && cp ${step.requirements} ${step.installedCopy}`,
      );
    case 'socketDir':
      return step.create
        ? as.root(sh`install -d -o root -g ${step.group} -m 2775 ${step.dir}`)
        : as.root(sh`chgrp ${step.group} ${step.dir} && chmod g+ws ${step.dir}`);
    case 'vassal':
      return !step.write
        ? as.root(sh`chown ${`${step.owner}:${step.group}`} ${step.path} && chmod 0644 ${step.path}`)
        : as.root(sh`sh -c ${VASSAL_SCRIPT} vassal ${step.path} ${`${step.owner}:${step.group}`}`, { stdin: step.content, label: `write ${step.path} atomically (${step.owner}:${step.group} 0644)` });
    case 'nginx':
      throw new Error('the nginx step needs its commands; see applyPlan');
  }
}

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at <= 0 ? '/' : path.slice(0, at);
}

/** The nginx step's commands, from the settings. */
export interface NginxCommands {
  test: string;
  reload: string;
}

/**
 * Run the plan's steps in order. Each done step is logged; the first that
 * fails stops the site with a message naming the steps done, the one that
 * failed (with its output) and those not done.
 */
export async function applyPlan(c: Context, plan: Plan, nginx: NginxCommands): Promise<void> {
  const as = asAdmin(c);
  const done: string[] = [];
  for (const [index, step] of plan.steps.entries()) {
    const result =
      step.kind === 'nginx'
        ? await as.root(sh`sh -c ${NGINX_SCRIPT} nginx ${step.file} ${step.link ?? ''} ${nginx.test} ${nginx.reload} ${step.writeFile ? '1' : '0'}`, {
            stdin: step.writeFile ? step.content : '',
            // What it says is logged once below, or is the failure's message.
            quiet: true,
            label: `write ${step.file}${step.link ? ` and link ${step.link}` : ''}, nginx -t (the previous file back if it fails), reload`,
          })
        : await stepCommand(step, as);
    if (result.failed) {
      const output = (step.kind === 'nginx' ? result.stdout : result.stderr || result.stdout).trim();
      const notDone = plan.steps.slice(index + 1).map(shortName);
      c.abort(
        [
          `${plan.site}: provision failed at the ${shortName(step)}:`,
          ...(output ? output.split('\n').slice(-15).map((line) => `  ${line}`) : [`  exit code ${result.exitCode}`]),
          `done: ${done.length > 0 ? done.join(', ') : 'nothing'}`,
          `not done: ${notDone.length > 0 ? notDone.join(', ') : 'nothing else'}`,
          'Fix the cause and run deploy provision again: it starts from what exists.',
        ].join('\n'),
      );
    }
    if (step.kind === 'nginx') c.log(result.stdout.trim().split('\n').at(-1) ?? 'nginx reloaded');
    c.log(`done: ${step.title}`);
    done.push(shortName(step));
  }
}

/** A step in a few words, for the lists of what was done and what was not. */
export function shortName(step: Step): string {
  switch (step.kind) {
    case 'createUser':
      return `user ${step.user}`;
    case 'unlockPassword':
      return "password field '*'";
    case 'authorizedKeys':
      return 'authorized_keys';
    case 'safeDirectory':
      return `safe.directory ${step.path}`;
    case 'clone':
      return `clone into ${step.codeDir}`;
    case 'virtualenv':
      return `virtualenv ${step.virtualenv}`;
    case 'requirements':
      return 'requirements';
    case 'socketDir':
      return `socket directory ${step.dir}`;
    case 'vassal':
      return `vassal ${step.path}`;
    case 'nginx':
      return `nginx server block ${step.file}`;
  }
}
