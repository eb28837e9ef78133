/**
 * The plan's steps, run in order through the admin account: as root (root
 * itself, or sudo) for the account, the socket directory, the vassal and
 * nginx; as the site user (sudo -u, or su from root) for what must be the
 * site user's: its keys, git config, checkout, virtualenv. A failed step
 * stops the rest, and the error says what was done and what was not.
 */
import { quote, sh, type Context, type Result, type RunOptions, type ShellCommand } from '../../src/index.ts';
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
    case 'knownHosts':
      return as.user(
        step.user,
        // A file whose last line has no newline gets one first, so the new line starts a line of its own.
        sh`umask 077 && mkdir -p .ssh && f=${`.ssh/${step.kind === 'knownHosts' ? 'known_hosts' : 'authorized_keys'}`} && if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi && cat >> "$f"`,
        { stdin: step.add.map((line) => `${line}\n`).join('') },
      );
    case 'safeDirectory':
      return as.user(step.user, sh`git config --global --add safe.directory ${step.path}`);
    case 'clone': {
      const branch = step.branch ? ['--branch', step.branch] : [];
      if (step.as === 'site') return as.user(step.user, sh`mkdir -p ${parentOf(step.codeDir)} && git clone --quiet ${branch} ${step.origin} ${step.codeDir}`);
      throw new Error('a clone as admin needs the agent socket; see applyPlan');
    }
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
      step.kind === 'clone' && step.as === 'admin'
        ? await cloneThroughAgent(c, as, step)
        : step.kind === 'nginx'
          ? outcomeOf(
              await as.root(sh`sh -c ${NGINX_SCRIPT} nginx ${step.file} ${step.link ?? ''} ${nginx.test} ${nginx.reload} ${step.writeFile ? '1' : '0'}`, {
                stdin: step.writeFile ? step.content : '',
                // What it says is logged once below, or is the failure's message.
                quiet: true,
                label: `write ${step.file}${step.link ? ` and link ${step.link}` : ''}, nginx -t (the previous file back if it fails), reload`,
              }),
              'stdout',
            )
          : outcomeOf(await stepCommand(step, as));
    if (result.failed) {
      const output = result.output;
      const notDone = plan.steps.slice(index + 1).map(shortName);
      c.abort(
        [
          `${plan.site}: provision failed at the ${shortName(step)}:`,
          ...output.split('\n').slice(-15).map((line) => `  ${line}`),
          `done: ${done.length > 0 ? done.join(', ') : 'nothing'}`,
          `not done: ${notDone.length > 0 ? notDone.join(', ') : 'nothing else'}`,
          'Fix the cause and run deploy provision again: it starts from what exists.',
        ].join('\n'),
      );
    }
    if (step.kind === 'nginx') c.log(result.output.split('\n').at(-1) ?? 'nginx reloaded');
    c.log(`done: ${step.title}`);
    done.push(shortName(step));
  }
}

/**
 * The clone through the admin's forwarded agent: root (who may use the
 * admin's agent socket) clones beside the checkout, checking the git host
 * against the site user's known_hosts, chowns it all to the site user and
 * moves it into place, so the checkout is the site user's (no
 * safe.directory needed) and a failed clone leaves nothing at codeDir.
 */
async function cloneThroughAgent(c: Context, as: As, step: Extract<Step, { kind: 'clone' }>): Promise<Outcome> {
  const socket = (await c.warnOnly().run('printf %s "$SSH_AUTH_SOCK"', { quiet: true })).stdout.trim();
  if (!socket) {
    return { failed: true, output: "the admin's connection has no forwarded agent (SSH_AUTH_SOCK is empty): set forwardAgent: true on the site and run ssh-agent with a key the git host accepts, or set cloneAs: 'site'" };
  }
  const tmp = `${step.codeDir}.deployfile-clone`;
  const ssh = `ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${quote(step.knownHostsFile)}`;
  const branch = step.branch ? ['--branch', step.branch] : [];
  const clone = sh`SSH_AUTH_SOCK=${socket} GIT_SSH_COMMAND=${ssh} git clone --quiet ${branch} ${step.origin} ${tmp}`;
  const result = await as.root(sh`rm -rf ${tmp} && mkdir -p ${parentOf(step.codeDir)} && ${clone} && chown -R ${`${step.user}:`} ${tmp} && mv ${tmp} ${step.codeDir} || { rc=$?; rm -rf ${tmp}; exit $rc; }`, {
    label: `git clone ${step.origin} into ${step.codeDir} as root through the forwarded agent, then chown -R ${step.user}`,
  });
  return outcomeOf(result);
}

/** How a step ended: failed or not, and what it said (the nginx script speaks on stdout, the rest on stderr). */
interface Outcome {
  failed: boolean;
  output: string;
}

function outcomeOf(result: Result, stream: 'stdout' | 'stderr' = 'stderr'): Outcome {
  const output = (stream === 'stdout' ? result.stdout : result.stderr || result.stdout).trim();
  return { failed: result.failed, output: output || (result.failed ? `exit code ${result.exitCode}` : result.stdout.trim()) };
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
    case 'knownHosts':
      return 'known_hosts';
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
