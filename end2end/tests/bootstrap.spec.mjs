// The Bootstrap page and terminal commands: the service's facts, the empty
// state, and a peer that announces a signed record appearing in the table
// while the page is open (it polls; announces make no live events).
import { generateKeyPairSync, sign } from 'node:crypto';
import { test, expect } from '@playwright/test';
import { login, untilHydrated, url } from '../helpers.mjs';

test.describe.configure({ mode: 'serial' });

// A peer record as crates/p2pnet-proto/src/record.rs signs it: the
// postcard payload (peer id, network, seq, issued, expires, addresses),
// signed with Ed25519 under the length-prefixed domain, both base64url.
const RECORD_DOMAIN = 'p2pnet/peer-record/v1';

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

function base32(bytes) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0, value = 0, out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

// A fresh peer's record listing one IPv4 `ip:port`; its id and text.
function signedRecord(seq, ip, port) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
  const now = Math.floor(Date.now() / 1000);
  const network = Buffer.from('p2pnet');
  const payload = Buffer.from([
    ...raw,
    ...varint(network.length), ...network,
    ...varint(seq), ...varint(now), ...varint(now + 3600),
    ...varint(1), ...varint(0), ...ip.split('.').map(Number), ...varint(port),
  ]);
  const domain = Buffer.from(RECORD_DOMAIN);
  const signature = sign(null, Buffer.concat([Buffer.from([domain.length]), domain, payload]), privateKey);
  return { id: base32(raw), text: `${payload.toString('base64url')}.${signature.toString('base64url')}` };
}

test('the page shows the service and no registered peers', async ({ page }) => {
  await login(page);
  await page.click('nav >> text=Bootstrap');
  await expect(page).toHaveURL(url('/bootstrap'));
  await expect(page.locator('h1')).toHaveText('Bootstrap');
  await expect(page.locator('#bootstrap-mode')).toHaveText('trustless');
  await expect(page.locator('#bootstrap-network')).toHaveText('p2pnet');
  await expect(page.locator('#authority-fingerprint')).toContainText('trustless mode');
  await expect(page.locator('#bootstrap-registered')).toHaveText('0');
  await expect(page.locator('#registered-empty')).toHaveText(/^No peers are registered\./);
  await expect(page.locator('#registered-table')).toHaveCount(0);
});

test('the terminal reports the bootstrap server and its key', async ({ page }) => {
  await login(page);
  await page.goto(url('/terminal'));
  const output = page.locator('#terminal-output');
  await untilHydrated(
    async () => {
      await page.fill('#terminal-input', 'bootstrap');
      await page.press('#terminal-input', 'Enter');
    },
    () => expect(output).toContainText(/mode\s+trustless/, { timeout: 2_000 }),
  );
  await expect(output).toContainText(/network\s+p2pnet/);
  await page.fill('#terminal-input', 'key list');
  await page.press('#terminal-input', 'Enter');
  await expect(output).toContainText('none in use (trustless mode');
  await page.fill('#terminal-input', 'key forget');
  await page.press('#terminal-input', 'Enter');
  await expect(output.locator('.t-err')).toContainText('`key` takes one of `list`, `export`, `rotate` or `gen`');
});

test('an announced peer appears in the open page', async ({ page, request }) => {
  await login(page);
  await page.goto(url('/bootstrap'));
  await expect(page.locator('#registered-empty')).toBeVisible();
  // Hydrated (the poll runs in the browser) before the announce.
  await expect(page.locator('#live-status')).toHaveText('live', { timeout: 15_000 });

  const record = signedRecord(7, '127.0.0.1', 4711);
  expect(record.id).toMatch(/^[a-z2-7]{52}$/);
  const r = await request.post(url('/api/v1/bootstrap/announce'), { data: { record: record.text } });
  expect(r.status(), await r.text()).toBe(200);
  expect((await r.json()).status).toBe('stored');

  const row = page.locator(`#registered-table tr[data-id="${record.id}"]`);
  await expect(row).toBeVisible({ timeout: 15_000 });
  await expect(row.locator('.peer')).toHaveText(record.id);
  await expect(row.locator('.addresses')).toHaveText('127.0.0.1:4711');
  await expect(row.locator('.observed')).toHaveText('127.0.0.1');
  await expect(row.locator('.seq')).toHaveText('7');
  await expect(row.locator('.expires')).toHaveText(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await expect(page.locator('#bootstrap-registered')).toHaveText('1');
  await expect(page.locator('#registered-empty')).toHaveCount(0);
  // The snapshot lists it within a second of the change.
  await expect(page.locator('#bootstrap-snapshot')).toContainText('lists 1 peers', { timeout: 15_000 });
});
