// Retakes the README's screenshots (docs/overview.png, docs/peers.png):
//   P2PNET_SCREENSHOTS=1 playwright test screenshots
// Skipped otherwise, so a normal run never rewrites committed files.
import { join, resolve } from 'node:path';
import { test, expect } from '@playwright/test';
import { dialPeer, openOverview } from '../helpers.mjs';

const docs = resolve(import.meta.dirname, '../../docs');
const children = [];
test.afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()));
});

test('README screenshots', async ({ page }) => {
  test.skip(!process.env.P2PNET_SCREENSHOTS, 'set P2PNET_SCREENSHOTS=1 to retake them');
  test.setTimeout(120_000);
  await page.setViewportSize({ width: 1200, height: 800 });
  const node = await openOverview(page);

  // One peer approved and talking, one waiting.
  const friend = dialPeer(children, node.addr, '--message', 'hello from dial_peer');
  const [, friendId] = await friend.line(/peer id: (\S+)/);
  await page.click('nav >> text=Peers');
  const pending = page.locator(`#pending-table tr[data-id="${friendId}"]`);
  await pending.locator('button.approve').click();
  await expect(page.locator(`#channels-table tr[data-id="${friendId}"]`)).toContainText('open');
  // Some traffic for the chart: a message every second for half a minute.
  for (let i = 0; i < 30; i++) {
    await page.fill('#send-peer', friendId.slice(0, 10));
    await page.fill('#send-text', `message ${i} `.padEnd(200 * (1 + (i % 7)), '·'));
    await page.click('#send-submit');
    await page.waitForTimeout(1_000);
  }
  const waiting = dialPeer(children, node.addr);
  const [, waitingId] = await waiting.line(/peer id: (\S+)/);
  await expect(page.locator(`#pending-table tr[data-id="${waitingId}"]`)).toBeVisible();
  await page.fill('#send-text', '');
  await page.fill('#send-peer', '');
  await page.locator(`#peers-table tbody[data-peer="${friendId}"] button.why`).click();
  await expect(page.locator('div.doctor:not(:empty)')).toBeVisible();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(docs, 'peers.png') });

  await page.click('nav >> text=Overview');
  await expect(page.locator('#throughput svg')).toBeVisible();
  await page.screenshot({ path: join(docs, 'overview.png'), fullPage: true });
});
