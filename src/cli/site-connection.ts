import { findDeployfile, loadDeployfile, type ResolvedSite } from '../config/load.ts';
import { UsageError } from '../core/errors.ts';
import { suggest } from '../config/schema.ts';
import { Redactor } from '../core/secret.ts';
import { retryingConnect } from '../executor/retry.ts';
import { passphraseProvider, sshSettingsFromEnv, sshTransportFor } from '../ssh/site-transport.ts';
import type { Transport } from '../transports/transport.ts';

/**
 * One site of the deployfile, by name, with a connection to it: what
 * `deploy unlock` and `deploy history` work on. Connecting retries
 * transient refusals like `deploy run` does, and says so on stderr.
 */
export async function connectToSite(siteName: string, flags: { file?: string }, stderr: NodeJS.WritableStream = process.stderr): Promise<{ site: ResolvedSite; transport: Transport }> {
  const deployfile = await loadDeployfile(findDeployfile(flags.file));
  const site = deployfile.sites.find((s) => s.name === siteName);
  if (!site) {
    const names = deployfile.sites.map((s) => s.name);
    const hint = suggest(siteName, names);
    throw new UsageError(`unknown site "${siteName}"${hint ? ` (did you mean "${hint}"?)` : ''}; sites are: ${names.join(', ')}`);
  }
  const redactor = new Redactor();
  const transport = retryingConnect(
    sshTransportFor(site, {
      ...sshSettingsFromEnv(process.env),
      passphrase: passphraseProvider({ env: process.env }),
      redactor,
      onWarning: (_site, message) => stderr.write(`deploy: warning: ${message}\n`),
    }),
    { onRetry: ({ error, attempt, attempts, delayMs }) => stderr.write(`deploy: ${error.message}; retrying in ${delayMs} ms (attempt ${attempt + 1} of ${attempts})\n`) },
  );
  await transport.connect();
  return { site, transport };
}
