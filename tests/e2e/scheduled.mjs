// A scheduled link in headless Chromium: created a few seconds ahead (by this script, right
// before the page opens), its page shows when it opens and counts down with the form hidden
// (data-code scheduled), then shows the form without a reload (data-code active), and the join
// goes through. Dates are written by the page's script in the browser's time zone.
// Usage: node scheduled.mjs BASE_URL API_KEY SCREENSHOT_PATH   (exit 0 on success)
import { launch } from './chromium.mjs';

const [base, apiKey, screenshot] = process.argv.slice(2);
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); };
const code = async (p) => p.locator('main').getAttribute('data-code');

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 }, timezoneId: 'Asia/Tokyo' });
  const page = await context.newPage();
  const startsAt = new Date(Date.now() + 6000).toISOString().replace(/\.\d+Z$/, 'Z');
  const created = await (await fetch(`${base}/v1/invites`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      media: { id: '1_abc', type: 'room', title: 'Weekly seminar' },
      inviter: { id: 'prof1', name: 'Prof One', role: 'privateOnlyRole', permission: 'owner' },
      invitee: { email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', role: 'viewer' },
      starts_at: startsAt,
    }),
  })).json();
  const landing = await page.goto(`${base}/i/${created.token}`);
  check(landing.status() === 200, `scheduled status ${landing.status()}`);
  check(await code(page) === 'scheduled', `scheduled data-code ${await code(page)}`);
  check(!(await page.locator('#join').isVisible()), 'the form is hidden before the start');
  check(await page.locator('#countdown').isVisible(), 'the countdown shows');
  const opens = page.locator('dd time').first();
  check(await opens.getAttribute('datetime') === startsAt, `the start as datetime: ${await opens.getAttribute('datetime')}`);
  check(!(await opens.textContent()).includes('UTC'), `written in the browser's zone: ${await opens.textContent()}`);
  await page.screenshot({ path: screenshot, fullPage: true });

  // No reload: the page turns into the form at the start.
  await page.waitForFunction(() => document.querySelector('main').getAttribute('data-code') === 'active', null, { timeout: 60000 });
  check(await page.locator('#join').isVisible(), 'the form shows at the start');
  check(!(await page.locator('#countdown').isVisible()), 'the countdown is gone');
  await page.fill('#email', 'ada@example.com');
  await Promise.all([page.waitForURL('**/demo/accept', { timeout: 10000 }), page.click('form#join button[type=submit]')]);
  check(await code(page) === 'accepted', `accept data-code ${await code(page)}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('scheduled checks passed');
