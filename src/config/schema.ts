import { z } from 'zod';
import { suggest } from './suggest.ts';

const isFunction = (value: unknown): boolean => typeof value === 'function';

/** Site and group names double as Unix user names and CLI words. */
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const USER = /^[a-z_][a-z0-9_-]*[$]?$/i;

export const SiteSchema = z
  .object({
    host: z.string().min(1, 'expected a host name'),
    user: z.string().regex(USER, 'expected a Unix user name').optional(),
    port: z.number().int().min(1).max(65535).optional(),
    identityFile: z.string().min(1).optional(),
    forwardAgent: z.boolean().optional(),
    proxyJump: z.string().min(1, 'expected jump hosts like "deploy@bastion:22", comma-separated, or "none"').optional(),
    hostKeyChecking: z.literal(false, { error: 'hostKeyChecking can only be set to false (verification is always on otherwise)' }).optional(),
    admin: z.string().regex(USER, 'expected the Unix user name of an admin account on the same host, like "root" or "ops"').optional(),
    sharedShell: z.literal(false, { error: 'sharedShell can only be set to false (a session per command); the shared shell is the default' }).optional(),
    vars: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export const TaskSchema = z.union([
  z.custom<(...args: unknown[]) => unknown>(isFunction, { message: 'expected a function or task({...})' }),
  z
    .object({
      description: z.string().optional(),
      once: z.boolean().optional(),
      lock: z.boolean().optional(),
      run: z.custom<(...args: unknown[]) => unknown>(isFunction, { message: 'expected a function' }),
    })
    .strict(),
]);

export const DeployfileSchema = z
  .object({
    sites: z.record(z.string().regex(NAME, 'site names may use letters, digits, _ . - only'), SiteSchema),
    groups: z.record(z.string().regex(NAME, 'group names may use letters, digits, _ . - only'), z.array(z.string())).optional(),
    admins: z.record(z.string().min(1, 'expected a host name'), z.string().regex(USER, 'expected the Unix user name of an admin account, like "root" or "ops"')).optional(),
    tasks: z.record(z.string().regex(NAME, 'task names may use letters, digits, _ . - only'), TaskSchema),
  })
  .strict()
  .superRefine((config, ctx) => {
    for (const [group, members] of Object.entries(config.groups ?? {})) {
      if (group in config.sites) {
        ctx.addIssue({ code: 'custom', path: ['groups', group], message: `"${group}" is both a site and a group; rename one` });
      }
      members.forEach((member, i) => {
        if (!(member in config.sites) && !(member in (config.groups ?? {}))) {
          ctx.addIssue({ code: 'custom', path: ['groups', group, i], message: `unknown site "${member}"; sites are: ${Object.keys(config.sites).join(', ') || '(none)'}` });
        }
      });
    }
  });

export type ValidDeployfile = z.infer<typeof DeployfileSchema>;

const ARTICLE: Record<string, string> = { object: 'an object', array: 'an array', undefined: 'nothing' };
const describeType = (type: string): string => ARTICLE[type] ?? `a ${type}`;

function describeInput(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (typeof input === 'function') return 'a function';
  try {
    const text = JSON.stringify(input);
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  } catch {
    return typeof input;
  }
}

const KNOWN_KEYS: Record<string, string[]> = {
  root: ['sites', 'groups', 'admins', 'tasks'],
  site: Object.keys(SiteSchema.shape),
  task: ['description', 'once', 'lock', 'run'],
};

/**
 * One line per problem, each starting with the path in the deployfile:
 * `sites.alleged.port: expected a number, got "22x"`.
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = issue.path.map(String).join('.') || '(top level)';
    const input = (issue as { input?: unknown }).input;
    switch (issue.code) {
      case 'invalid_type':
        return `${path}: expected ${describeType(issue.expected)}, got ${describeInput(input)}`;
      case 'unrecognized_keys': {
        const kind = issue.path.length === 0 ? 'root' : issue.path[0] === 'sites' ? 'site' : 'task';
        return issue.keys
          .map((key) => {
            const hint = suggest(key, KNOWN_KEYS[kind] ?? []);
            return `${path === '(top level)' ? '' : `${path}.`}${key}: unknown setting${hint ? ` (did you mean "${hint}"?)` : `; allowed: ${(KNOWN_KEYS[kind] ?? []).join(', ')}`}`;
          })
          .join('\n');
      }
      case 'invalid_union':
        return `${path}: expected a task function or task({ run, description, once }), got ${describeInput(input)}`;
      case 'too_small':
      case 'too_big':
        return `${path}: ${issue.message.replace(/^Too (small|big): expected number to be /, 'expected a number ')}, got ${describeInput(input)}`;
      default:
        return `${path}: ${issue.message}${input !== undefined && issue.code !== 'custom' ? `, got ${describeInput(input)}` : ''}`;
    }
  });
}
