// Starts a real server on a fresh data directory (SQLite, port chosen by the OS),
// reads the generated admin password it prints once, and stops it afterwards.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

export default async function globalSetup() {
  const bin = process.env.P2PNET_SERVER_BIN || join(root, 'target/debug/p2pnet-server');
  const site = process.env.P2PNET_SITE_ROOT || join(root, 'target/site-dev');
  const data = mkdtempSync(join(tmpdir(), 'p2pnet-e2e-'));
  const server = spawn(bin, ['--listen', '127.0.0.1:0', '--data-dir', data, '--site-root', site,
                             '--log-filter', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'], env: {
      ...process.env, RUST_LOG: '',
      // The embedded node stays on loopback; no LAN discovery from tests.
      P2PNET_NODE__LISTEN: '127.0.0.1:0', P2PNET_NODE__DISCOVERY__ENABLED: 'false',
    } });
  let output = '';
  server.stderr.on('data', (d) => { output += d; });
  const { url, password } = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${output}`)), 30_000);
    server.stdout.on('data', (d) => {
      output += d;
      const pw = output.match(/Generated admin password \(shown once\): (\S+)/);
      const addr = output.match(/Control panel: (http:\/\/\S+?)\//);
      if (pw && addr) { clearTimeout(timer); ok({ url: addr[1], password: pw[1] }); }
    });
    server.on('exit', (code) => { clearTimeout(timer); fail(new Error(`server exited (${code}):\n${output}`)); });
  });
  process.env.P2PNET_E2E_URL = url;
  process.env.P2PNET_E2E_PASSWORD = password;
  return async () => {
    const exited = new Promise((ok) => server.once('exit', (code, signal) => ok({ code, signal })));
    server.kill('SIGTERM');
    const { code } = await exited;
    rmSync(data, { recursive: true, force: true });
    if (code !== 0) throw new Error(`server did not shut down cleanly on SIGTERM (exit ${code}):\n${output}`);
  };
}
