// The laptop-to-phone move in headless Chromium: the invitee joins on a laptop; on a phone the
// used-up link offers "Send me a code"; the code arrives at the test's email relay (read from
// RELAY/last); a wrong code is refused and announced, tied to its field; the right one moves
// the link to the phone and hands off to /demo/accept; the laptop has lost its place.
// Usage: node move.mjs BASE_URL TOKEN RELAY_BASE_URL SCREENSHOT_PATH   (exit 0 on success)
import { launch } from './chromium.mjs';

const [base, token, relay, screenshot] = process.argv.slice(2);
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); };

const browser = await launch();
const code = async (p) => p.locator('main').getAttribute('data-code');
const join = 'form button[type=submit]:not([name])';
try {
  const laptop = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  await laptop.goto(`${base}/i/${token}`);
  await laptop.fill('#email', 'ada@example.com');
  await Promise.all([laptop.waitForURL('**/demo/accept', { timeout: 10000 }), laptop.click(join)]);
  check(await code(laptop) === 'accepted', `laptop accept data-code ${await code(laptop)}`);

  const phone = await (await browser.newContext({ viewport: { width: 360, height: 740 } })).newPage();
  const used = await phone.goto(`${base}/i/${token}`);
  check(used.status() === 410, `phone landing status ${used.status()}`);
  check(await code(phone) === 'exhausted', `phone landing data-code ${await code(phone)}`);
  check(await phone.locator('button[name=action][value=send_code]').count() === 1, 'the used-up page offers a code');
  await phone.fill('#email', 'ada@example.com');
  const [sent] = await Promise.all([
    phone.waitForResponse((r) => r.request().method() === 'POST'),
    phone.click('button[name=action][value=send_code]'),
  ]);
  await phone.waitForLoadState();
  check(sent.status() === 200, `code_sent status ${sent.status()}`);
  check(await code(phone) === 'code_sent', `after send data-code ${await code(phone)}`);
  const field = phone.locator('#code');
  check(await field.getAttribute('autocomplete') === 'one-time-code', 'autocomplete one-time-code');
  check(await field.getAttribute('inputmode') === 'numeric', 'inputmode numeric');
  check(await phone.locator('label[for=code]').count() === 1, 'the code field has a label');
  await phone.screenshot({ path: screenshot, fullPage: true });

  const message = await (await fetch(`${relay}/last`)).json();
  check(message.to[0].email === 'ada@example.com', `code sent to ${message.to[0].email}`);
  const received = message.subject.slice(-6);
  check(/^[0-9]{6}$/.test(received), `a 6-digit code in the subject: ${message.subject}`);

  // A wrong code: refused, announced, the field still there.
  const wrong = received === '000000' ? '000001' : '000000';
  await phone.fill('#code', wrong);
  const [refused] = await Promise.all([
    phone.waitForResponse((r) => r.request().method() === 'POST'),
    phone.press('#code', 'Enter'),
  ]);
  await phone.waitForLoadState();
  check(refused.status() === 403, `wrong code status ${refused.status()}`);
  check(await code(phone) === 'invalid_code', `wrong code data-code ${await code(phone)}`);
  check(await phone.locator('[role=alert]').count() === 1, 'the refusal is announced');
  check(await phone.locator('#code').count() === 1, 'the code field is offered again');

  await phone.fill('#code', received);
  await Promise.all([phone.waitForURL('**/demo/accept', { timeout: 10000 }), phone.press('#code', 'Enter')]);
  check(await code(phone) === 'accepted', `phone accept data-code ${await code(phone)}`);

  const lost = await laptop.goto(`${base}/i/${token}`);
  check(lost.status() === 410, `the laptop lost its place: ${lost.status()}`);
  check(await code(laptop) === 'exhausted', `laptop data-code ${await code(laptop)}`);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('move checks passed');
