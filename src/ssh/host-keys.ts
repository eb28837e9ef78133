/**
 * Host-key decisions: trust, record, ask or refuse, with the text ssh(1)
 * would print. known_hosts parsing and matching live in known-hosts.ts.
 */
import { appendKnownHost, checkHostKeyByName, fingerprint, keyTypeLabel, keyTypeOf, type HostKeyVerdict } from './known-hosts.ts';
import type { Endpoint } from './plan.ts';
import { runStateOf } from './run-state.ts';
import type { SshSettings } from './settings.ts';
import { displayPath } from './ssh-config.ts';

/** The text ssh(1) prints before asking about an unknown host key. */
export function hostKeyQuestionText(q: { site: string; host: string; keyType: string; fingerprint: string; warning?: string }): string {
  return [
    `The authenticity of host '${q.host}' (site ${q.site}) can't be established.`,
    `${keyTypeLabel(q.keyType)} key fingerprint is ${q.fingerprint}.`,
    ...(q.warning ? [q.warning] : []),
    'Are you sure you want to continue connecting (yes/no)?',
  ].join('\n');
}

function refusalFor(verdict: Exclude<HostKeyVerdict, { status: 'match' }>, endpoint: Endpoint, home: string): string {
  const name = endpoint.knownHostsName;
  const where = (file: string, line: number): string => `${displayPath(file, home)}:${line}`;
  switch (verdict.status) {
    case 'revoked':
      return `the host key of ${name} (${keyTypeLabel(verdict.keyType)} ${verdict.actual}) is marked @revoked in ${where(verdict.file, verdict.line)}; refusing to connect, nothing was run.`;
    case 'changed':
      return [
        `HOST KEY FOR ${name} HAS CHANGED: refusing to connect, nothing was run.`,
        `  Someone could be intercepting the connection (man-in-the-middle), or the server was reinstalled.`,
        `  known_hosts has:  ${keyTypeLabel(verdict.keyType)} ${verdict.expected}  (${where(verdict.file, verdict.line)})`,
        `  server offered:   ${keyTypeLabel(verdict.keyType)} ${verdict.actual}`,
        `  Only once you have checked the new key with the server's administrator, remove the old one:`,
        `    ssh-keygen -R '${name}' -f ${verdict.file}    (or delete line ${verdict.line} of ${verdict.file})`,
      ].join('\n');
    case 'unknown': {
      const fp = `${keyTypeLabel(verdict.keyType)} ${verdict.actual}`;
      if (verdict.certAuthorities.length > 0) {
        const ca = verdict.certAuthorities[0]!;
        return [
          `${name} is trusted through a @cert-authority line (${where(ca.file, ca.line)}), but deployfile's SSH library (ssh2) cannot check host certificates; the server offered a plain key (${fp}).`,
          `  Refusing to connect. After checking that key, add it to known_hosts: ssh-keyscan -p ${endpoint.port} ${endpoint.hostName} >> ~/.ssh/known_hosts`,
        ].join('\n');
      }
      if (verdict.otherKeys.length > 0) {
        const other = verdict.otherKeys.map((k) => `${keyTypeLabel(k.keyType)} ${k.fingerprint} (${where(k.file, k.line)})`).join(', ');
        return [
          `the server ${name} offered a ${fp} key, but known_hosts has only keys of other types for it: ${other}. Refusing to connect, nothing was run.`,
          `  The server may have been reinstalled, or someone may be intercepting the connection; check with its administrator.`,
        ].join('\n');
      }
      return [
        `the host key of ${name} is not known (${fp}); refusing to connect without asking, nothing was run.`,
        `  After checking that fingerprint with the server's administrator, run once with --accept-new-host-keys, or on a terminal, or add it: ssh-keyscan -p ${endpoint.port} ${endpoint.hostName} >> ~/.ssh/known_hosts`,
      ].join('\n');
    }
  }
}

/**
 * Whether to trust a server's host key: known_hosts, then this run's
 * answers, then --accept-new-host-keys / accept-new, then a question (one at
 * a time for the whole run), else a refusal that says what to do.
 */
export function hostVerifierFor(endpoint: Endpoint, site: string, settings: SshSettings, home: string): (key: Buffer) => Promise<true | string> {
  const state = runStateOf(settings);
  const acceptedId = (key: Buffer): string => `${endpoint.knownHostsName} ${key.toString('base64')}`;
  const record = (key: Buffer, how: string): void => {
    state.accepted.add(acceptedId(key));
    const label = `${keyTypeLabel(keyTypeOf(key))} ${fingerprint(key)}`;
    if (!endpoint.recordFile) {
      settings.onWarning?.(site, `accepted the host key of ${endpoint.knownHostsName} (${label}) ${how} for this run only: no UserKnownHostsFile to record it in`);
      return;
    }
    try {
      const line = appendKnownHost(endpoint.recordFile, endpoint.knownHostsName, key, { hash: endpoint.hashKnownHosts });
      settings.onWarning?.(site, `Permanently added ${endpoint.knownHostsName} (${label}) to ${displayPath(endpoint.recordFile, home)}:${line} (${how})`);
    } catch (error) {
      settings.onWarning?.(site, `accepted the host key of ${endpoint.knownHostsName} (${label}) ${how}, but could not record it in ${endpoint.recordFile}: ${(error as Error).message}`);
    }
  };

  return async (key) => {
    const verdict = checkHostKeyByName(endpoint.knownHostsFiles, endpoint.knownHostsName, key);
    if (verdict.status === 'match') return true;
    if (verdict.status !== 'unknown') return refusalFor(verdict, endpoint, home);
    if (state.accepted.has(acceptedId(key))) return true;
    if (verdict.certAuthorities.length > 0) return refusalFor(verdict, endpoint, home);

    // One question (or one write) at a time: parallel sites often share a server.
    const check = async (): Promise<true | string> => {
      const again = checkHostKeyByName(endpoint.knownHostsFiles, endpoint.knownHostsName, key);
      if (again.status === 'match' || state.accepted.has(acceptedId(key))) return true;
      if (again.status !== 'unknown') return refusalFor(again, endpoint, home);
      const no = `host key of ${endpoint.knownHostsName} (${keyTypeLabel(again.keyType)} ${again.actual}) not accepted: you answered no. Nothing was run.`;
      if (state.rejected.has(acceptedId(key))) return no;
      const strict = endpoint.strictHostKeyChecking === 'yes';
      const acceptNew = settings.acceptNewHostKeys || endpoint.strictHostKeyChecking === 'accept-new';
      if (!strict && acceptNew && again.otherKeys.length === 0) {
        record(key, settings.acceptNewHostKeys ? '--accept-new-host-keys' : 'StrictHostKeyChecking accept-new');
        return true;
      }
      if (!strict && settings.askHostKey) {
        const warning =
          again.otherKeys.length > 0
            ? `WARNING: known_hosts has a key of another type for this host: ${again.otherKeys.map((k) => `${keyTypeLabel(k.keyType)} ${k.fingerprint} (${displayPath(k.file, home)}:${k.line})`).join(', ')}.`
            : undefined;
        const question = { site, host: endpoint.knownHostsName, keyType: again.keyType, fingerprint: again.actual, warning };
        const yes = await settings.askHostKey({ ...question, text: hostKeyQuestionText(question) });
        if (yes) {
          record(key, 'you answered yes');
          return true;
        }
        state.rejected.add(acceptedId(key));
        return no;
      }
      const refusal = refusalFor(again, endpoint, home);
      return strict ? `${refusal}\n  (ssh config sets StrictHostKeyChecking yes for this host)` : refusal;
    };
    // The run's one question queue when there is one (src/prompts); else checks queue among themselves.
    if (settings.questions) return settings.questions.turn(check);
    const turn = state.hostKeyQueue.then(check, check);
    state.hostKeyQueue = turn.catch(() => undefined);
    return turn;
  };
}
