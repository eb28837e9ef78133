// Not a peer: the lower bound for any tool that keeps one SSH connection and
// opens a channel per command (deployfile does), written with the same ssh2
// library and nothing else: connect, verify the host key against
// KNOWN_HOSTS, then N sequential exec channels running `true`. What
// deployfile spends above this is its own overhead; what this spends is
// the server's (a session, a login shell and `true` per command) and the
// round trips.
//
//   node bench/peers/ssh2-channels.mjs PORT KEY KNOWN_HOSTS USER N
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';

const require = createRequire(new URL('../../package.json', import.meta.url));
const { Client } = require('ssh2');

const [port, key, knownHosts, user, n] = process.argv.slice(2);
const known = new Set(
  readFileSync(knownHosts, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`[127.0.0.1]:${port} `))
    .map((l) => l.split(/\s+/)[2]),
);

// Nagle off, as OpenSSH does for interactive sessions (TCP_NODELAY): without
// it every small request waits for the peer's delayed ACK (about 40 ms).
const sock = net.connect({ host: '127.0.0.1', port: Number(port), noDelay: true });
await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));

const client = new Client();
await new Promise((resolve, reject) => {
  client.once('ready', resolve).once('error', reject);
  client.connect({
    sock,
    host: '127.0.0.1',
    port: Number(port),
    username: user,
    privateKey: readFileSync(key),
    hostVerifier: (k) => known.has(k.toString('base64')),
  });
});

const exec = () =>
  new Promise((resolve, reject) => {
    client.exec('true', (error, channel) => {
      if (error) return reject(error);
      let code = null;
      channel.on('exit', (c) => (code = c));
      channel.on('data', () => {});
      channel.stderr.on('data', () => {});
      channel.on('close', () => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
    });
  });

for (let i = 0; i < Number(n); i++) await exec();
client.end();
