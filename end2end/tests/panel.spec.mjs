import { test, expect } from '@playwright/test';
import { base, login, untilHydrated, url } from '../helpers.mjs';

test.describe.configure({ mode: 'serial' });

test('an unauthenticated visit redirects to the login page', async ({ page }) => {
  await page.goto(url('/peers'));
  await expect(page).toHaveURL(url('/login?next=%2Fpeers'));
  await expect(page.locator('h1')).toHaveText('P2PNet');
});

test('a wrong password is rejected', async ({ page }) => {
  await page.goto(url('/login'));
  await page.fill('input[name=password]', 'not-the-password');
  await page.click('#login-submit');
  await expect(page).toHaveURL(url('/login?error=invalid'));
  await expect(page.locator('#login-error')).toHaveText('Wrong user name or password.');
});

test('overview renders and hydrates', async ({ page }) => {
  await login(page);
  await expect(page.locator('#version')).toHaveText(/^\d+\.\d+\.\d+/);
  await expect(page.locator('#database')).toContainText('SQLite');
  await expect(page.locator('#listen')).toContainText(base());
  await expect(page.locator('#current-user')).toHaveText('admin');
  await untilHydrated(
    () => page.click('#refresh'),
    () => expect(page.locator('#refresh-count')).not.toHaveText('refreshed 0×', { timeout: 500 }),
  );
});

test('peers page shows the empty state and filters', async ({ page }) => {
  await login(page);
  await page.click('nav >> text=Peers');
  await expect(page).toHaveURL(url('/peers'));
  await expect(page.locator('#peer-summary')).toContainText('No peers known yet');
  await untilHydrated(
    () => page.fill('#peer-filter', 'abc'),
    () => expect(page.locator('#peer-summary')).toContainText('none match “abc”', { timeout: 500 }),
  );
});

test('settings are saved and survive a reload', async ({ page }) => {
  await login(page);
  await page.goto(url('/settings'));
  await expect(page.locator('#effective-config')).toContainText('[server]');
  await expect(page.locator('#effective-config')).not.toContainText(process.env.P2PNET_E2E_PASSWORD);
  const name = `e2e-node-${Date.now()}`;
  await untilHydrated(
    async () => {
      await page.fill('#node-name-input', name);
      await page.click('#save-settings');
    },
    () => expect(page.locator('#save-status')).toHaveText('Saved.', { timeout: 2_000 }),
  );
  // Still on the settings page (a click before hydration posts the form
  // natively and is redirected back here, which is fine).
  await expect(page).toHaveURL(/\/settings\??$/);
  await page.goto(url('/'));
  await expect(page.locator('#node-name')).toHaveText(name);
});

test('a settings form rejects a bad value at its field and stores nothing', async ({ page }) => {
  await login(page);
  await page.goto(url('/settings'));
  await untilHydrated(
    async () => {
      await page.fill('#approval-timeout-secs-input', '3');
      await page.click('#save-settings');
    },
    () => expect(page.locator('#error-approval_timeout_secs')).toContainText('between 10 and 86400', { timeout: 2_000 }),
  );
  await expect(page.locator('#save-status')).toContainText('Not saved');
  await page.goto(url('/settings'));
  await expect(page.locator('#approval-timeout-secs-input')).toHaveValue('300');
});

test('terminal help round-trip', async ({ page }) => {
  await login(page);
  await page.goto(url('/terminal'));
  await untilHydrated(
    async () => {
      await page.fill('#terminal-input', 'help');
      await page.press('#terminal-input', 'Enter');
    },
    () => expect(page.locator('#terminal-output')).toContainText('whoami', { timeout: 2_000 }),
  );
  await page.fill('#terminal-input', 'nonsense');
  await page.press('#terminal-input', 'Enter');
  await expect(page.locator('#terminal-output .t-err')).toContainText('unknown command `nonsense`');
});

test('a POST without the CSRF token is rejected', async ({ page, playwright }) => {
  await login(page);
  // From the page itself, with the session cookie but without the token.
  const status = await page.evaluate(async () => {
    const r = await fetch('/api/parser/input', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"line":"whoami"}',
    });
    return r.status;
  });
  expect(status).toBe(403);
  // A cross-site form post carrying the browser's cookie.
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'p2pnet_session');
  expect(session.httpOnly).toBe(true);
  expect(session.sameSite).toBe('Strict');
  const api = await playwright.request.newContext();
  const r = await api.post(url('/api/parser/input'), {
    headers: { origin: 'http://evil.example', cookie: `p2pnet_session=${session.value}` },
    data: { line: 'whoami' },
  });
  expect(r.status()).toBe(403);
  await api.dispose();
});

test('logout ends the session', async ({ page }) => {
  await login(page);
  await page.click('#logout');
  await expect(page).toHaveURL(url('/login'));
  await page.goto(url('/'));
  await expect(page).toHaveURL(url('/login?next=%2F'));
});
