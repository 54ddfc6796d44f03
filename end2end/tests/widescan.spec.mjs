// Scan jobs from the panel, inside network namespaces the test creates and
// deletes (end2end/netns-lab.sh; root only, as in CI). The server runs in
// the scanner's namespace with test mode on, and so does Chromium (through
// a wrapper that enters the namespace), so every packet stays in the lab.
// A second server in the peer's namespace is another instance: its node
// listens on [::]:47001 and `widescan listen` answers probes with that port.
import { test, expect, chromium } from '@playwright/test';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const lab = join(root, 'end2end/netns-lab.sh');
const serverBin = process.env.P2PNET_SERVER_BIN || join(root, 'target/debug/p2pnet-server');
const widescanBin = join(dirname(serverBin), 'widescan');
const site = process.env.P2PNET_SITE_ROOT || join(root, 'target/site-dev');
const tag = `ws${process.pid % 100000}`;
const password = 'widescan-e2e-password';
const PEER_PORT = 47001;
const LIVE = ['fd00:5ca7:4::10', 'fd00:5ca7:4::20', 'fd00:5ca7:4::40'];

test.skip(process.getuid?.() !== 0, 'needs root for network namespaces (CI runs as root)');
test.describe.configure({ mode: 'serial' });

const children = [];
const dirs = [];

function start(ns, bin, args, env = {}) {
  const child = spawn('ip', ['netns', 'exec', `${tag}-${ns}`, bin, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: '', ...env },
  });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  const exited = new Promise((ok) => child.once('exit', (code) => ok(code)));
  children.push({ child, exited });
  return {
    output: () => output,
    async line(re) {
      await expect.poll(() => output, { timeout: 30_000, message: `${bin}: ${re}` }).toMatch(re);
      return output.match(re);
    },
  };
}

function server(ns, env) {
  const data = mkdtempSync(join(tmpdir(), 'p2pnet-ws-e2e-'));
  dirs.push(data);
  return start(ns, serverBin, ['--listen', '127.0.0.1:0', '--data-dir', data, '--site-root', site,
                               '--log-filter', 'warn'], {
    P2PNET_AUTH__ADMIN_PASSWORD: password,
    P2PNET_NODE__DISCOVERY__ENABLED: 'false',
    ...env,
  });
}

test.beforeAll(() => { execFileSync(lab, ['up', tag]); });
test.afterAll(async () => {
  for (const { child, exited } of children.splice(0)) {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
  execFileSync(lab, ['down', tag]);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test('a scan started from the page finds the live hosts and the other instance', async () => {
  test.setTimeout(120_000);
  // The other instance: a node and a listener that announces it.
  const peer = server('p', { P2PNET_NODE__LISTEN: `[::]:${PEER_PORT}` });
  await peer.line(/Control panel: http:\/\/\S+/);
  start('p', widescanBin, ['listen', '--port', String(PEER_PORT), '--test-mode',
                           '--contact', 'e2e-peer', '--output', '/dev/null']);
  const scanner = server('s', {
    P2PNET_NODE__LISTEN: '127.0.0.1:0',
    P2PNET_WIDESCAN__TEST_MODE: 'true',
    P2PNET_WIDESCAN__COOLDOWN_SECS: '1',
  });
  const [, base] = await scanner.line(/Control panel: (http:\/\/\S+?)\//);

  // Chromium in the scanner's namespace too: the server's loopback is its own.
  const wrapper = join(dirs[0], 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${tag}-s ${process.env.CHROMIUM_PATH || '/usr/bin/chromium'} "$@"\n`, { mode: 0o755 });
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${base}/login`);
    await page.fill('input[name=username]', 'admin');
    await page.fill('input[name=password]', password);
    await page.click('#login-submit');
    await expect(page).toHaveURL(`${base}/`);
    await expect(page.locator('#live-status')).toHaveText('live', { timeout: 15_000 });
    await page.click('nav >> text=Widescan');
    await expect(page).toHaveURL(`${base}/widescan`);
    await expect(page.locator('#scan-policy')).toContainText('test mode');
    await page.evaluate(() => { window.__samePage = true; });

    // A field-level error first: a rate of 0 is refused and nothing starts.
    await page.fill('#scan-prefixes', 'fd00:5ca7:4::/120');
    await page.fill('#scan-rate', '0');
    await page.click('#scan-submit');
    await expect(page.locator('[data-for=scan]')).toContainText('rate: must be at least 1');
    await expect(page.locator('#scan-jobs-empty')).toBeVisible();

    await page.fill('#scan-excludes', 'fd00:5ca7:4::1/128');
    await page.fill('#scan-rate', '40');
    await page.fill('#scan-hardware', 'cpu');
    await page.click('#scan-submit');
    await expect(page.locator('[data-for=scan]')).toHaveText('scan job 1 started');

    // Progress moves by itself, on the live stream.
    const row = page.locator('#scan-jobs-table tr[data-id="1"]');
    const done = row.locator('td.done');
    await expect(done).not.toHaveText('0.0%', { timeout: 15_000 });
    const first = await done.innerText();
    await expect(done).not.toHaveText(first, { timeout: 15_000 });

    // Stop, then resume from the checkpoint.
    await row.locator('button', { hasText: 'Stop' }).click();
    await expect(row.locator('td.state')).toHaveText('stopped', { timeout: 15_000 });
    await row.locator('button', { hasText: 'Resume' }).click();
    await expect(row.locator('td.state')).toHaveText('completed', { timeout: 30_000 });
    await expect(done).toHaveText('100.0%');
    // Every address once over both runs: 255 probes.
    await expect(row.locator('td.sent')).toHaveText(/^255 /);

    // The hits are exactly the live hosts; the instance is listed with its port.
    const results = page.locator('#scan-results-table tbody tr');
    await expect(results.filter({ has: page.locator('td.kind', { hasText: 'hit' }) })).toHaveCount(3);
    const hits = await page.locator('#scan-results-table tr:has(td.kind:text-is("hit")) td.addr').allInnerTexts();
    expect(hits.sort()).toEqual([...LIVE].sort());
    const peerRow = page.locator('#scan-results-table tr:has(td.kind:text-is("peer"))');
    await expect(peerRow.locator('td.addr')).toHaveText('fd00:5ca7:4::40');
    await expect(peerRow.locator('td.port')).toHaveText(String(PEER_PORT));
    await expect(row.locator('td.peers')).toHaveText('1');

    // The downloads carry the same findings (fetched by the page: the
    // server is reachable from the namespace only).
    const download = (path) => page.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
    }, `${base}${path}`);
    const csv = await download('/api/v1/widescan/jobs/1/results.csv');
    expect(csv.status).toBe(200);
    expect(csv.type).toContain('text/csv');
    const lines = csv.text.trim().split('\n');
    expect(lines[0]).toBe('job,kind,addr,instance_id,port,contact,via,at_ms');
    expect(lines.filter((l) => l.startsWith('1,hit,')).map((l) => l.split(',')[2]).sort()).toEqual([...LIVE].sort());
    expect(lines.some((l) => l.startsWith(`1,peer,fd00:5ca7:4::40,`) && l.includes(`,${PEER_PORT},e2e-peer,`))).toBe(true);
    const ndjson = await download('/api/v1/widescan/jobs/1/results.ndjson');
    const objects = ndjson.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(objects.filter((o) => o.kind === 'hit')).toHaveLength(3);

    // All of the above happened in one page load, live.
    expect(await page.evaluate(() => window.__samePage)).toBe(true);

    // Another job's findings are one form away (job 2 does not exist yet:
    // an empty table).
    await page.fill('#scan-job', '2');
    await page.click('#scan-show');
    await expect(page).toHaveURL(`${base}/widescan?job=2`);
    await expect(page.locator('#scan-selected')).toHaveText('2');
    await expect(page.locator('#scan-results-empty')).toBeVisible();
    await page.goto(`${base}/widescan?job=1`);
    await expect(page.locator('#scan-results-table tr:has(td.kind:text-is("peer"))')).toHaveCount(1);

    // The node dialled the instance: a known peer of source widescan.
    await expect(page.locator('#live-status')).toHaveText('live', { timeout: 15_000 });
    await page.evaluate(() => { window.__samePage = true; });
    await page.click('nav >> text=Peers');
    await expect(page.locator('#known tbody.peer', { hasText: 'widescan' })).toHaveCount(1, { timeout: 20_000 });
    expect(await page.evaluate(() => window.__samePage)).toBe(true);
  } finally {
    await browser.close();
  }
});
