// The panel as a live view of the server's node, with a second, real p2pnet
// node (the dial_peer example) on loopback: it shows up for approval
// without a reload, its message reaches the feed, blocking it closes its
// channel, and "Why?" explains a blocked and an unreachable peer. The
// terminal runs the same flow for another instance.
import { test, expect } from '@playwright/test';
import { dialPeer, openOverview, untilHydrated, url } from '../helpers.mjs';

test.describe.configure({ mode: 'serial' });

// Every dial_peer started by a test; killed after it, pass or fail.
const children = [];
test.afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()));
});

test('a connecting peer is approved, heard, blocked and explained, live', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const node = await openOverview(page);

  // The copy button puts the node's id on the clipboard.
  await page.click('#copy-node-id');
  await expect(page.locator('#copy-status')).toHaveText('Copied.');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(node.id);

  // Everything below happens in this one page load: client-side navigation
  // keeps the marker, a reload would lose it.
  await page.evaluate(() => { window.__samePage = true; });
  await page.click('nav >> text=Peers');
  await expect(page).toHaveURL(url('/peers'));
  await expect(page.locator('#pending-empty')).toBeVisible();

  const message = `hello from the e2e test ${Date.now()}`;
  const friend = dialPeer(children, node.addr, '--message', message);
  const [, friendId] = await friend.line(/peer id: (\S+)/);
  await friend.line(new RegExp(`connected: ${node.id}`));

  // The approval request appears by itself.
  const pending = page.locator(`#pending-table tr[data-id="${friendId}"]`);
  await expect(pending).toBeVisible();
  await pending.locator('button.approve').click();
  const row = page.locator(`#peers-table tbody[data-peer="${friendId}"]`);
  await expect(row.locator('.result')).toHaveText(`approved ${friendId}`);
  await expect(row.locator('.flag.approved')).toBeVisible();
  await expect(pending).toHaveCount(0);
  await expect(page.locator(`#channels-table tr[data-id="${friendId}"] .channel-state`))
    .toContainText('open');

  // The message it sent while waiting was held, and delivered on approval.
  await page.click('nav >> text=Overview');
  await expect(page.locator('#event-feed')).toContainText(message);
  await expect(page.locator('#node-channels')).toContainText('1 open');

  // Blocking closes its channel; the row says so, and so does the peer.
  await page.click('nav >> text=Peers');
  await row.locator('button.block').click();
  await expect(row.locator('.result')).toHaveText(`blocked ${friendId}`);
  await expect(row.locator('.flag.blocked')).toBeVisible();
  await expect(row.locator('.last-event')).toContainText('closed by us: blocked');
  await expect(page.locator(`#channels-table tr[data-id="${friendId}"]`)).toHaveCount(0);
  expect(await friend.exited).toEqual({ code: 0, signal: null });
  expect(friend.output()).toContain('closed: blocked (by the remote)');

  // Why? The access list, by id.
  await row.locator('button.why').click();
  await expect(row.locator('div.doctor')).toContainText('access list, by id: blocked (its id)');
  await expect(row.locator('div.doctor')).toContainText('channel: none');

  // Unblocked from the access list; then dialled where nothing listens.
  await page.locator(`#blocked-table tr[data-id="${friendId}"] button.unblock`).click();
  await expect(page.locator('#blocked-empty')).toBeVisible();
  await expect(row.locator('.flag.blocked')).toHaveCount(0);
  await page.fill('#connect-target', `${friendId}@127.0.0.1:1`);
  await page.click('#connect-submit');
  await expect(page.locator('#connect-form .result.alert')).toContainText('refused');
  await row.locator('button.why').click();
  await expect(row.locator('div.doctor')).toContainText('access list, by id: allowed');
  await expect(row.locator('div.doctor')).toContainText(/dial 127\.0\.0\.1:1 \d+s ago: failed: .*refused/);

  expect(await page.evaluate(() => window.__samePage)).toBe(true);
});

test('the terminal approves and explains another instance', async ({ page }) => {
  const node = await openOverview(page);
  await page.goto(url('/terminal'));
  const output = page.locator('#terminal-output');
  const run = async (line) => {
    await page.fill('#terminal-input', line);
    await page.press('#terminal-input', 'Enter');
  };
  await untilHydrated(
    () => run('node'),
    () => expect(output).toContainText(node.id, { timeout: 2_000 }),
  );

  const other = dialPeer(children, node.addr);
  const [, otherId] = await other.line(/peer id: (\S+)/);
  const prefix = otherId.slice(0, 10);
  await expect(async () => {
    await run('pending');
    await expect(output).toContainText(otherId, { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });

  await run(`approve ${prefix}`);
  await expect(output).toContainText(`approved ${otherId}`);
  await run(`doctor ${prefix}`);
  await expect(output).toContainText('decision: approved');
  await expect(output).toContainText('channel: open');

  // Its process dies: the channel goes, the decision stays.
  await other.kill();
  await expect(async () => {
    await run(`doctor ${prefix}`);
    await page.waitForTimeout(300);
    const text = await output.innerText();
    const last = text.slice(text.lastIndexOf(`doctor ${otherId}`));
    expect(last).toContain('channel: none');
    expect(last).toContain('decision: approved');
  }).toPass({ timeout: 20_000 });
});

test('a speed test runs from a channel row and is charted', async ({ page }) => {
  const node = await openOverview(page);
  await page.click('nav >> text=Peers');
  await expect(page).toHaveURL(url('/peers'));
  await expect(page.locator('#perf-empty')).toBeVisible();

  const friend = dialPeer(children, node.addr, '--elevate');
  const [, friendId] = await friend.line(/peer id: (\S+)/);
  await friend.line(/elevated/);
  const pending = page.locator(`#pending-table tr[data-id="${friendId}"]`);
  await pending.locator('button.approve').click();
  const row = page.locator(`#peers-table tbody[data-peer="${friendId}"]`);
  await expect(row.locator('.result')).toHaveText(`approved ${friendId}`);

  // Approved with messages only: the node may not ask for a test yet.
  const channel = page.locator(`#channels-table tr[data-id="${friendId}"]`);
  await expect(channel.locator('.channel-state')).toContainText('open');
  await channel.locator('button.perf').click();
  await expect(page.locator('#channels-table .result')).toContainText('not permitted');

  // Elevated: both sides grant perf; the test runs and is charted.
  await row.locator('button.elevate').click();
  await expect(row.locator('.result')).toContainText(`elevated ${friendId}`);
  await expect(channel.locator('.channel-state')).toContainText('perf');
  await channel.locator('button.perf').click();
  await expect(page.locator('#channels-table .result'))
    .toContainText(new RegExp(`perf ${friendId}: up 16\\.0 MiB in .* down 16\\.0 MiB in `));
  await expect(page.locator('#perf-chart rect.bar-up')).toHaveCount(1);
  await expect(page.locator('#perf-results')).toContainText(friendId.slice(0, 12));
});
