// Accessibility of every participant page state in headless Chromium, with axe-core: zero
// violations at WCAG 2.1 A and AA on the form, the form with an error, a status page, the
// scheduled page, the code page and the hand-off, at 360 and 1280 pixels wide. Also: a
// keyboard-only join (Tab, type, Enter) lands on the hand-off, and a refused email is announced
// and tied to its field. Run once per theme colour by tests/api/browser.rs.
// The browser asks for LOCALE's pages (its Accept-Language); with a SCREENSHOT_DIR, the form at
// 360 px is saved there as form-LOCALE.png.
// Usage: node a11y.mjs BASE_URL API_KEY LABEL LOCALE [SCREENSHOT_DIR]   (exit 0 on success)
import { AxeBuilder } from '@axe-core/playwright';
import { launch } from './chromium.mjs';

const [base, apiKey, label, locale, shots] = process.argv.slice(2);
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(`${label}: ${what}`); };
const code = async (p) => p.locator('main').getAttribute('data-code');

const create = async (extra = {}) => (await (await fetch(`${base}/v1/invites`, {
  method: 'POST',
  headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
  body: JSON.stringify({
    media: { id: '1_abc', type: 'room', title: 'Weekly seminar' },
    inviter: { id: 'prof1', name: 'Prof One', role: 'privateOnlyRole', permission: 'owner' },
    invitee: { email: 'ada@example.com', first_name: 'Ada', last_name: 'Lovelace', role: 'viewer' },
    ...extra,
  }),
})).json()).token;

// Clicks `selector` and waits for the page that answers with `expected` as its data-code.
const submit = async (page, selector, expected) => {
  await page.click(selector);
  await page.waitForSelector(`main[data-code="${expected}"]`, { timeout: 15000 }).catch(() => {});
};

const scan = async (page, state, width) => {
  const result = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'])
    .analyze();
  for (const v of result.violations) {
    check(false, `${state} at ${width}px: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  }
  check(result.passes.length > 0, `${state} at ${width}px: axe ran no rule`);
};

const browser = await launch();
try {
  for (const width of [360, 1280]) {
    const context = await browser.newContext({ viewport: { width, height: 800 }, locale });
    const page = await context.newPage();
    const token = await create();

    await page.goto(`${base}/i/${token}`);
    check(await code(page) === 'active', `form data-code ${await code(page)}`);
    check(await page.locator('html').getAttribute('lang') === locale, `page language ${await page.locator('html').getAttribute('lang')}`);
    await scan(page, 'form', width);
    if (shots && width === 360) await page.screenshot({ path: `${shots}/form-${locale}.png`, fullPage: true });

    await page.fill('#email', 'eve@example.com');
    await submit(page, 'form button[type=submit]', 'email_mismatch');
    check(await code(page) === 'email_mismatch', `error data-code ${await code(page)}`);
    const email = page.locator('#email');
    check(await email.getAttribute('aria-invalid') === 'true', 'the refused field is marked invalid');
    const described = await email.getAttribute('aria-describedby');
    check(described && (await page.locator(`#${described}[role=alert]`).count()) === 1, 'the field is described by the announced error');
    await scan(page, 'form with an error', width);

    await page.fill('#email', 'ada@example.com');
    await Promise.all([page.waitForURL('**/demo/accept', { timeout: 10000 }), page.click('form button[type=submit]:not([name])')]);
    const other = await (await browser.newContext({ viewport: { width, height: 800 }, locale })).newPage();
    await other.goto(`${base}/i/${token}`);
    check(await code(other) === 'exhausted', `status data-code ${await code(other)}`);
    await scan(other, 'status page', width);

    await other.fill('#email', 'ada@example.com');
    await submit(other, 'button[value=send_code]', 'code_sent');
    check(await code(other) === 'code_sent', `code page data-code ${await code(other)}`);
    await scan(other, 'code entry', width);

    const later = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await page.goto(`${base}/i/${await create({ starts_at: later })}`);
    check(await code(page) === 'scheduled', `scheduled data-code ${await code(page)}`);
    await scan(page, 'scheduled', width);

    // The hand-off, kept on screen: the platform answers its post 204, so nothing navigates.
    const still = await (await browser.newContext({ viewport: { width, height: 800 }, locale })).newPage();
    await still.route('**/demo/accept', (route) => route.fulfill({ status: 204 }));
    await still.goto(`${base}/i/${await create()}`);
    await still.fill('#email', 'ada@example.com');
    await submit(still, 'form button[type=submit]', 'granted');
    check(await code(still) === 'granted', `hand-off data-code ${await code(still)}`);
    await scan(still, 'hand-off', width);
  }

  // The whole join with the keyboard alone.
  const keyboard = await (await browser.newContext({ locale })).newPage();
  await keyboard.goto(`${base}/i/${await create()}`);
  await keyboard.keyboard.press('Tab');
  check(await keyboard.evaluate(() => document.activeElement && document.activeElement.id) === 'email', 'Tab reaches the email field first');
  await keyboard.keyboard.type('ada@example.com');
  await Promise.all([keyboard.waitForURL('**/demo/accept', { timeout: 10000 }), keyboard.keyboard.press('Enter')]);
  check(await code(keyboard) === 'accepted', `keyboard join data-code ${await code(keyboard)}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`${label}: accessibility checks passed`);
