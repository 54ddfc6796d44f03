// Shared by the specs: logging in, waiting for hydration, and the second
// p2pnet node (crates/p2pnet/examples/dial_peer.rs) as a child process.
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { expect } from '@playwright/test';

const root = resolve(import.meta.dirname, '..');

export const base = () => process.env.P2PNET_E2E_URL;
export const url = (path) => `${base()}${path}`;

export async function login(page) {
  await page.goto(url('/login'));
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', process.env.P2PNET_E2E_PASSWORD);
  await page.click('#login-submit');
  await expect(page).toHaveURL(url('/'));
}

// Logs in and waits for the live stream (which also means hydrated);
// returns the node's peer address and id from the Overview.
export async function openOverview(page) {
  await login(page);
  await expect(page.locator('#live-status')).toHaveText('live', { timeout: 15_000 });
  const addr = (await page.locator('#node-listen').innerText()).split(',')[0].trim();
  const id = (await page.locator('#node-id').innerText()).trim();
  expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(id).toMatch(/^[a-z2-7]{52}$/);
  return { addr, id };
}

// Clicks made before the wasm has hydrated the page do nothing, so retry
// the interaction until the page reacts.
export async function untilHydrated(action, check) {
  await expect(async () => {
    await action();
    await check();
  }).toPass({ timeout: 15_000 });
}

// Where `cargo build -p p2pnet --example dial_peer` puts the binary: beside
// the server's, under examples/.
function dialPeerBin() {
  if (process.env.P2PNET_DIAL_PEER_BIN) return process.env.P2PNET_DIAL_PEER_BIN;
  const server = process.env.P2PNET_SERVER_BIN || join(root, 'target/debug/p2pnet-server');
  return join(dirname(server), 'examples/dial_peer');
}

// Starts dial_peer against `addr`. Every child is registered in `children`,
// which the spec kills after each test whatever its outcome.
export function dialPeer(children, addr, ...args) {
  const child = spawn(dialPeerBin(), ['--connect', addr, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((ok) => child.once('exit', (code, signal) => ok({ code, signal })));
  const peer = {
    exited,
    output: () => output,
    // The first match of `re` in what it printed, waiting for it.
    async line(re, timeout = 15_000) {
      await expect.poll(() => output, { timeout, message: `dial_peer output: ${re}` }).toMatch(re);
      return output.match(re);
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
  children.push(peer);
  return peer;
}
