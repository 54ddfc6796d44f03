// The Routines page: the node's routines with start, stop and interval,
// each action answered beside its control.
import { test, expect } from '@playwright/test';
import { login, untilHydrated } from '../helpers.mjs';

test('a routine is stopped, started and given a new interval', async ({ page }) => {
  await login(page);
  await page.click('nav >> text=Routines');
  const row = page.locator('#routines-table tr[data-id="DiscernPeerChannels"]');
  await expect(row.locator('.running')).toHaveText('yes');

  await untilHydrated(
    () => row.locator('button.stop').click(),
    () => expect(row.locator('.result')).toHaveText('routine DiscernPeerChannels stopped', { timeout: 2_000 }),
  );
  await expect(row.locator('.running')).toHaveText('no');
  await row.locator('button.start').click();
  await expect(row.locator('.result')).toHaveText('routine DiscernPeerChannels started');
  await expect(row.locator('.running')).toHaveText('yes');

  await row.locator('input[name=secs]').fill('0');
  await row.locator('button[type=submit]').click();
  await expect(row.locator('.result.alert')).toContainText('between 1 and 86400');
  await row.locator('input[name=secs]').fill('45');
  await row.locator('button[type=submit]').click();
  await expect(row.locator('.result')).toHaveText('routine DiscernPeerChannels runs every 45 s');
  await expect(row.locator('td').nth(1)).toHaveText('45s');
});
