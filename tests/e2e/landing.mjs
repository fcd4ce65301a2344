// Drives headless Chromium through an invite: open the link, type the email, click Join, land
// on /demo/accept; reopen in the same browser (free re-entry); a second profile is refused.
// Then a page on another origin auto-posts the join form of a second link (TOKEN2) in a browser
// that holds a device cookie: refused (403 cross_site_request), the cookie survives unchanged.
// Usage: node landing.mjs BASE_URL TOKEN SCREENSHOT_PATH TOKEN2   (exit 0 on success)
import http from 'node:http';
import { launch } from './chromium.mjs';

const [base, token, screenshot, token2] = process.argv.slice(2);
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); };

const browser = await launch();
try {
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await phone.newPage();
  const cspViolations = [];
  page.on('console', (msg) => { if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text()); });
  const code = async (p) => p.locator('main').getAttribute('data-code');

  const landing = await page.goto(`${base}/i/${token}`);
  check(landing.status() === 200, `landing status ${landing.status()}`);
  check(await code(page) === 'active', `landing data-code ${await code(page)}`);
  check(await page.locator('label[for=email]').count() === 1, 'the email input has a label');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `page overflows a 360 px screen by ${overflow}px`);
  await page.screenshot({ path: screenshot, fullPage: true });

  await page.fill('#email', 'ada@example.com');
  await Promise.all([page.waitForURL('**/demo/accept', { timeout: 10000 }), page.click('button[type=submit]')]);
  check(await code(page) === 'accepted', `accept data-code ${await code(page)}`);
  const field = async (name) => (await page.locator(`[data-field=${name}]`).textContent()).trim();
  check(await field('media_id') === '1_abc', `media ${await field('media_id')}`);
  check(await field('role') === 'speaker', `role ${await field('role')}`);
  check(await field('email') === 'ada@example.com', `email ${await field('email')}`);

  // Same browser again: the form, not "used up".
  await page.goto(`${base}/i/${token}`);
  check(await code(page) === 'active', `re-entry data-code ${await code(page)}`);
  await page.fill('#email', 'ada@example.com');
  await Promise.all([page.waitForURL('**/demo/accept', { timeout: 10000 }), page.click('button[type=submit]')]);
  check(await code(page) === 'accepted', `re-entry accept data-code ${await code(page)}`);

  // A second browser profile on the 1-use link.
  const other = await (await browser.newContext()).newPage();
  const refused = await other.goto(`${base}/i/${token}`);
  check(refused.status() === 410, `second profile status ${refused.status()}`);
  check(await code(other) === 'exhausted', `second profile data-code ${await code(other)}`);
  check(cspViolations.length === 0, `CSP violations: ${cspViolations.join(' | ')}`);

  // Another site auto-posts the join form to the service, in a browser holding a device cookie.
  const victim = await browser.newContext();
  const victimPage = await victim.newPage();
  await victimPage.goto(`${base}/i/${token2}`);
  const cookieBefore = (await victim.cookies(`${base}/i/${token2}`)).find((c) => c.name === 'itm_device');
  check(cookieBefore !== undefined, 'the landing page set a device cookie');
  const attack = `<!doctype html><form method="post" action="${base}/i/${token2}">
    <input name="email" value="ada@example.com"></form>
    <script>document.forms[0].submit()</script>`;
  const evil = http.createServer((req, res) => { res.setHeader('content-type', 'text/html'); res.end(attack); });
  await new Promise((resolve) => evil.listen(0, 'localhost', resolve));
  try {
    const evilOrigin = `http://localhost:${evil.address().port}`;
    const posted = victimPage.waitForResponse((r) => r.request().method() === 'POST');
    await victimPage.goto(`${evilOrigin}/`);
    const response = await posted;
    await victimPage.waitForLoadState();
    check(response.status() === 403, `cross-site post status ${response.status()}`);
    check(await code(victimPage) === 'cross_site_request', `cross-site post data-code ${await code(victimPage)}`);
    check(!('set-cookie' in response.headers()), 'the cross-site answer sets no cookie');
    const cookieAfter = (await victim.cookies(`${base}/i/${token2}`)).find((c) => c.name === 'itm_device');
    check(cookieAfter && cookieAfter.value === cookieBefore.value, 'the device cookie survived the cross-site post');
  } finally {
    evil.close();
  }
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('browser checks passed');
