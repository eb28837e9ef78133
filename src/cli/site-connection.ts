import { someoneAtTerminal } from '../prompts/terminal.ts';
import { findDeployfile, loadDeployfile, type ResolvedSite } from '../config/load.ts';
import { ConnectionError, EXIT, UsageError } from '../core/errors.ts';
import { reportFatal } from './report.ts';
import { suggest } from '../config/suggest.ts';
import { Redactor } from '../core/secret.ts';
import { retryingConnect } from '../connection/site-connection.ts';
import { sshRunSettings } from '../ssh/run-settings.ts';
import { sshTransportFor } from '../ssh/site-transport.ts';
import { inquirerAsker } from '../prompts/interactive.ts';
import type { Transport } from '../transports/transport.ts';

/**
 * One site of the deployfile, by name, with a connection to it: what
 * `deploy unlock` and `deploy history` work on. Connecting retries
 * transient refusals like `deploy run` does, and says so on stderr.
 */
export async function connectToSite(siteName: string, flags: { file?: string; sshConfig?: string; acceptNewHostKeys?: boolean }, stderr: NodeJS.WritableStream = process.stderr): Promise<{ site: ResolvedSite; transport: Transport }> {
  const deployfile = await loadDeployfile(findDeployfile(flags.file));
  const site = deployfile.sites.find((s) => s.name === siteName);
  if (!site) {
    const names = deployfile.sites.map((s) => s.name);
    const hint = suggest(siteName, names);
    throw new UsageError(`unknown site "${siteName}"${hint ? ` (did you mean "${hint}"?)` : ''}; sites are: ${names.join(', ')}`);
  }
  const redactor = new Redactor();
  // The same SSH settings as `deploy run`: -F, --accept-new-host-keys, env secrets, TTY questions.
  const interactive = someoneAtTerminal(process.stderr);
  const { ssh } = sshRunSettings({
    configFile: flags.sshConfig,
    acceptNewHostKeys: flags.acceptNewHostKeys,
    asker: interactive ? { confirm: inquirerAsker.confirm, secret: (message) => inquirerAsker.secret(null, message) } : undefined,
    redactor,
    onWarning: (_site, message) => stderr.write(`deploy: warning: ${message}\n`),
  });
  const transport = retryingConnect(
    sshTransportFor(site, ssh),
    { onRetry: ({ error, attempt, attempts, delayMs }) => stderr.write(`deploy: ${error.message}; retrying in ${delayMs} ms (attempt ${attempt + 1} of ${attempts})\n`) },
  );
  await transport.connect();
  return { site, transport };
}

/**
 * Connect to one site, run `work` on it, and always close the connection:
 * the frame of `deploy unlock` and `deploy history`. Connection failures exit
 * 1 with their message, usage and deployfile errors 2, as `deploy run` does.
 *
 * @example
 * return withSite(name, flags, async (site, transport) => { ...; return EXIT.ok; });
 */
export async function withSite(
  siteName: string,
  flags: Parameters<typeof connectToSite>[1],
  work: (site: ResolvedSite, transport: Transport) => Promise<number>,
): Promise<number> {
  let connected;
  try {
    connected = await connectToSite(siteName, flags);
  } catch (error) {
    if (error instanceof ConnectionError) {
      process.stderr.write(`deploy: ${error.message}\n`);
      return EXIT.failed;
    }
    return reportFatal(error);
  }
  const { site, transport } = connected;
  try {
    return await work(site, transport);
  } catch (error) {
    process.stderr.write(`deploy: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  } finally {
    await transport.close().catch(() => undefined);
  }
}
