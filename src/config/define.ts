import type { Context } from '../core/context.ts';

/** A task body: an async function of the context. */
export type TaskFn<V = any> = (c: Context<V>) => void | Promise<void>;

/**
 * A task with its options. Plain functions are tasks too; this form adds a
 * description for `deploy list` and the run-once flag.
 */
export interface TaskDefinition<V = any> {
  description?: string;
  /**
   * Run once per run on the operator's machine (like tests or `git push`),
   * however many sites the run covers; every site waits for its outcome.
   */
  once?: boolean;
  /** Whether the task needs the site's deploy lock (default true); read-only tasks say false. */
  lock?: boolean;
  run: TaskFn<V>;
}

/** How a site is reached. `user` defaults to the site's name: one Unix account per site. */
export interface SiteConfig<V = Record<string, unknown>> {
  host: string;
  user?: string;
  port?: number;
  identityFile?: string;
  /** Forward the operator's ssh-agent so `git pull` on the server can use its keys. */
  forwardAgent?: boolean;
  /**
   * Jump hosts, like OpenSSH's ProxyJump / `ssh -J`: `[user@]host[:port]`,
   * comma-separated, first hop first; `'none'` ignores ProxyJump from
   * ~/.ssh/config. Each hop's host key is verified too.
   *
   * Like every setting here, this wins over ~/.ssh/config, as ssh's command
   * line does; options the deployfile leaves out (HostName, User, Port,
   * IdentityFile, ProxyJump, ...) come from ~/.ssh/config for `host`.
   */
  proxyJump?: string;
  /**
   * `false` turns host key verification off for this site only: anyone
   * between you and the server can then impersonate it. Every run says so.
   * There is no way to turn it off for all sites.
   */
  hostKeyChecking?: false;
  /**
   * `false` gives every command a new SSH session, as `ssh host cmd` does.
   * By default the commands that need no stdin run one after another in one
   * long-lived shell on the connection, each as `$SHELL -c '<line>'`: about
   * 30 ms less server time per command. Turn it off if a command leaves a
   * process running in the background that a later command's timeout or
   * Ctrl-C must not end (they share that shell's process group).
   */
  sharedShell?: false;
  /**
   * The admin account on the same host (`'root'`, or a user with sudo, whose
   * password is DEPLOY_SUDO_PASSWORD or asked on a TTY) through which
   * `deploy provision` sets the site up and `deploy doctor` checks what the
   * site user cannot read. Same host, port, key and jump hosts as the site;
   * only the user differs. Default: the deployfile's `admins[host]`.
   */
  admin?: string;
  /** Typed values for this site's tasks, read as `c.site.vars`. */
  vars?: V;
}

export interface DeployfileConfig<V = Record<string, unknown>> {
  sites: Record<string, SiteConfig<V>>;
  /** Named lists of sites, selectable with `--site GROUP`. */
  groups?: Record<string, string[]>;
  /** The admin account per host, for sites that name none: `{ 'web1.example.com': 'root' }`. */
  admins?: Record<string, string>;
  tasks: Record<string, TaskFn<V> | TaskDefinition<V>>;
}

/**
 * The default export of a `deployfile.ts`. Only adds types: what it returns
 * is validated when the file is loaded.
 *
 * @example
 * export default defineDeployfile({
 *   sites: { alleged: { host: 'web1.example.com' } },
 *   tasks: { uptime: async (c) => { await c.run('uptime'); } },
 * });
 */
export function defineDeployfile<V = Record<string, unknown>>(config: DeployfileConfig<V>): DeployfileConfig<V> {
  return config;
}

/**
 * Declare a task with a description (and options).
 *
 * @example
 * task('Show disk usage', async (c) => { await c.run('df -h ~'); })
 * task({ description: 'Run the tests', once: true, run: async (c) => { await c.local('npm test'); } })
 */
export function task<V = any>(description: string, run: TaskFn<V>, options?: Omit<TaskDefinition<V>, 'run' | 'description'>): TaskDefinition<V>;
export function task<V = any>(definition: TaskDefinition<V>): TaskDefinition<V>;
export function task<V = any>(
  first: string | TaskDefinition<V>,
  run?: TaskFn<V>,
  options: Omit<TaskDefinition<V>, 'run' | 'description'> = {},
): TaskDefinition<V> {
  if (typeof first === 'string') {
    if (!run) throw new TypeError(`task("${first}") needs a function as its second argument`);
    return { ...options, description: first, run };
  }
  return first;
}

/** A task as the engine sees it, whichever form the author used. */
export function normalizeTask(value: TaskFn | TaskDefinition): TaskDefinition {
  return typeof value === 'function' ? { run: value } : value;
}
