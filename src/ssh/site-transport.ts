/**
 * The jump chain: from a site's connection plan to the SshTransport that
 * reaches it, each jump host's connection carrying the next one's socket.
 * Where to connect is plan.ts's job, whom to trust host-keys.ts's, how to
 * log in auth.ts's; the settings and questions are in settings.ts.
 */
import { homedir } from 'node:os';
import type { ResolvedSite } from '../config/load.ts';
import { ConnectionError } from '../core/errors.ts';
import { siteTarget } from '../core/target.ts';
import { SshTransport } from '../transports/ssh.ts';
import type { ExecResult, Transport } from '../transports/transport.ts';
import { authMethodsFor } from './auth.ts';
import { hostVerifierFor } from './host-keys.ts';
import { algorithmsForKeyType, fingerprint, keyTypeLabel, keyTypeOf, knownKeyTypes } from './known-hosts.ts';
import { planConnection, type ConnectionPlan, type Endpoint } from './plan.ts';
import type { SshSettings } from './settings.ts';

// The wing's public names, from the files that now hold them.
export { authMethodsFor } from './auth.ts';
export { localUser, passphraseProvider, sshSettingsFromEnv } from './env.ts';
export { hostKeyQuestionText } from './host-keys.ts';
export { DEFAULT_IDENTITY_FILES, planConnection, type ConnectionPlan, type Endpoint } from './plan.ts';
export { SshRunState } from './run-state.ts';
export type { HostKeyQuestion, PassphraseRequest, SshSettings } from './settings.ts';

function transportFor(endpoint: Endpoint, site: string, settings: SshSettings, home: string, extra: { description: string; checking: boolean; openSocket?: SshTransportOpenSocket; onClose?: () => Promise<void>; forwardAgent: boolean; sharedShell?: boolean }): SshTransport {
  const knownTypes = knownKeyTypes(endpoint.knownHostsFiles, endpoint.knownHostsName);
  const verify = hostVerifierFor(endpoint, site, settings, home);
  const warned = { done: false };
  return new SshTransport({
    site,
    description: extra.description,
    host: endpoint.hostName,
    port: endpoint.port,
    username: endpoint.user,
    auth: authMethodsFor(endpoint, site, settings),
    hostKeyAlgorithms: knownTypes.flatMap(algorithmsForKeyType),
    readyTimeoutMs: endpoint.connectTimeoutMs ?? settings.readyTimeoutMs,
    keepaliveIntervalMs: endpoint.keepaliveIntervalMs,
    keepaliveCountMax: endpoint.keepaliveCountMax,
    forwardAgent: extra.forwardAgent && endpoint.forwardAgent !== false,
    forwardAgentSocket: endpoint.forwardAgent === false ? undefined : endpoint.forwardAgent,
    openSocket: extra.openSocket,
    onClose: extra.onClose,
    sharedShell: extra.sharedShell,
    hostVerifier: extra.checking
      ? verify
      : (key) => {
          if (!warned.done) {
            warned.done = true;
            settings.onWarning?.(
              site,
              `host key checking is OFF for site ${site} (hostKeyChecking: false): accepted ${endpoint.knownHostsName}'s ${keyTypeLabel(keyTypeOf(key))} ${fingerprint(key)} unverified; anyone on the network path could impersonate it.`,
            );
          }
          return true;
        },
  });
}

type SshTransportOpenSocket = ConstructorParameters<typeof SshTransport>[0]['openSocket'];

/**
 * The SSH transport for one site: ssh config applied, every host key (the
 * site's and each jump host's) verified against known_hosts, authentication
 * as OpenSSH does it. Never throws: configuration problems surface when it
 * connects, as a ConnectionError for that site (not retried).
 *
 * @example
 * const transport = sshTransportFor(site, settings); // settings: one object per run
 * await transport.exec('uptime', {});
 */
export function sshTransportFor(site: ResolvedSite, settings: SshSettings = {}): Transport {
  const home = settings.home ?? homedir();
  let plan: ConnectionPlan;
  try {
    plan = planConnection(site, settings);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return new UnplannableTransport(siteTarget(site), new ConnectionError(`site ${site.name}: ${message}`, site.name, false, { cause: error }));
  }
  const jumps: SshTransport[] = [];
  plan.jumps.forEach((endpoint, i) => {
    const previous = jumps[i - 1];
    const description = `jump host ${endpoint.user}@${endpoint.hostName}:${endpoint.port} (${i + 1} of ${plan.jumps.length}) for site ${site.name}`;
    jumps.push(
      transportFor(endpoint, site.name, settings, home, {
        description,
        checking: true,
        forwardAgent: false,
        openSocket: previous ? () => previous.forwardOut(endpoint.hostName, endpoint.port) : undefined,
      }),
    );
  });
  const last = jumps[jumps.length - 1];
  return transportFor(plan.target, site.name, settings, home, {
    description: `site ${site.name}`,
    checking: plan.hostKeyChecking,
    forwardAgent: true,
    sharedShell: site.sharedShell !== false,
    openSocket: last ? () => last.forwardOut(plan.target.hostName, plan.target.port) : undefined,
    onClose: jumps.length > 0 ? async () => {
      for (const jump of [...jumps].reverse()) await jump.close().catch(() => undefined);
    } : undefined,
  });
}

/**
 * The transport of a site that cannot be planned (a ProxyCommand, a broken
 * ssh config): every use fails with why, as a ConnectionError that is not
 * retried. Nothing is opened.
 */
class UnplannableTransport implements Transport {
  readonly usable = true;
  constructor(
    readonly target: string,
    private readonly error: ConnectionError,
  ) {}
  connect(): Promise<void> {
    return Promise.reject(this.error);
  }
  exec(): Promise<ExecResult> {
    return Promise.reject(this.error);
  }
  put(): Promise<void> {
    return Promise.reject(this.error);
  }
  get(): Promise<void> {
    return Promise.reject(this.error);
  }
  async close(): Promise<void> {}
}
