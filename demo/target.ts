/**
 * What a server would run for the demo site, inside this process: a
 * stand-in uWSGI emperor and an SSH server that accepts one fresh key, plus
 * the deployfile that deploys to them with the built-in tasks. Written only
 * against `deployfile` and `deployfile/tasks`, as any deployfile is.
 */
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { defineDeployfile, type DeployfileConfig } from '../src/index.ts';
import { djangoTasks } from '../tasks/index.ts';
import { generateKeyPair, startEmbeddedSshServer } from './embedded-ssh/server.ts';
import { startStandInEmperor } from './emperor.ts';
import type { PythonSetup } from './python.ts';
import { DEMO_SITE, type Workspace } from './workspace.ts';

/** A running demo target; see {@link startDemoTarget}. */
export interface DemoTarget {
  /** Where the SSH server listens. */
  host: '127.0.0.1';
  port: number;
  /** The only key the server accepts (OpenSSH format); its host key is in `w.knownHosts` already. */
  privateKey: string;
  /** The demo site and `djangoTasks()` pointed at the workspace: what `deploy run deploy` would load. */
  deployfile: DeployfileConfig;
  /** Stops the SSH server, then the stand-in emperor. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the stand-in emperor on the workspace's vassal and the SSH server
 * serving the site user's home, and records the server's host key in the
 * workspace's known_hosts.
 *
 * @example
 * const target = await startDemoTarget(w, python);
 * try { ... deploy target.deployfile over SSH to target.port ... } finally { await target.close(); }
 */
export async function startDemoTarget(w: Workspace, python: PythonSetup): Promise<DemoTarget> {
  const stops: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0)) await stop().catch(() => {});
  };
  try {
    const emperor = await startStandInEmperor(w.vassal);
    stops.push(() => emperor.close());
    const keys = generateKeyPair('deploy-demo');
    // The server's commands (git pull, pip, the reload check) inherit this process's PATH, as a login shell would set it.
    const server = await startEmbeddedSshServer({ homes: { [DEMO_SITE]: w.home }, authorizedKeys: [keys.publicKey], env: { PIP_DISABLE_PIP_VERSION_CHECK: '1' } });
    stops.unshift(() => server.close());
    await writeFile(w.knownHosts, `${server.knownHostsLine}\n`);
    const host = '127.0.0.1';
    const deployfile = defineDeployfile({
      sites: { [DEMO_SITE]: { host, port: server.port } },
      tasks: djangoTasks({
        apps: ['pages'],
        testCommand: python.testCommand,
        localDir: w.workClone,
        codeDir: w.codeDir,
        virtualenv: w.virtualenv,
        settings: 'example_site',
        vassal: w.vassal,
        uwsgiLog: w.uwsgiLog,
      }),
    });
    return { host, port: server.port, privateKey: keys.privateKey, deployfile, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** GET /revision over the vassal's unix socket, as `curl --unix-socket` would: the revision the site serves. */
export function fetchRevision(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ socketPath, path: '/revision', headers: { Host: DEMO_SITE }, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(body.trim()) : reject(new Error(`HTTP ${response.statusCode}`))));
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 5s')));
    request.on('error', reject);
  });
}
