// An admin at /admin in a real headless Chromium (driven by playwright-core), for
// tests/test_admin_dashboard_browser.py. Each step is printed as it is done, one JSON object a
// line on stdout: {"step": name, ...what the page showed}. Exits non-zero on the first failure,
// with the page's text on stderr.
//
// Arguments: a JSON plan:
//   {"chromium": path, "base": "http://127.0.0.1:port", "email": e, "password": p,
//    "scenario": "moderate" | "suspend" | "no-csrf", "listingTitle": t, "listingId": n}
//   moderate  sign in, find the listing in the moderation queue, approve it
//   suspend   sign in, find the listing, suspend it with a reason, restore it
//   no-csrf   sign in, open the listing, strip the suspend form's CSRF token, submit it

import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2] ?? "{}");

async function report(step, fields = {}) {
  process.stdout.write(`${JSON.stringify({ step, ...fields })}\n`);
  // ROOST_SCREENSHOTS=dir keeps a picture of the page at each step, to look at by hand.
  if (process.env.ROOST_SCREENSHOTS) {
    await page.screenshot({ path: `${process.env.ROOST_SCREENSHOTS}/${step}.png`, fullPage: true });
  }
}

// Chromium refuses to run as root with its sandbox on (containers, CI).
const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
const browser = await chromium.launch({ executablePath: plan.chromium, args, headless: true });
const page = await browser.newPage();
page.setDefaultTimeout(10_000);
// A page that breaks its own Content-Security-Policy says so in the console.
const violations = [];
page.on("console", (message) => {
  if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text());
});

async function shown() {
  return (await page.textContent("main")) ?? "";
}

try {
  await page.goto(`${plan.base}/admin/users`);
  await report("redirected", { url: page.url() });

  await page.fill('input[name="email"]', plan.email);
  await page.fill('input[name="password"]', plan.password);
  await Promise.all([page.waitForURL(`${plan.base}/admin`), page.click('button[type="submit"]')]);
  const cookies = await page.context().cookies();
  const session = cookies.find((cookie) => cookie.name === "roost_admin_session");
  await report("signed-in", {
    url: page.url(),
    heading: await page.textContent("h1"),
    cookie: session && {
      httpOnly: session.httpOnly,
      sameSite: session.sameSite,
      path: session.path,
      secure: session.secure,
    },
  });

  if (plan.scenario === "moderate") {
    // row.count() does not wait: the queue must have loaded before it is counted.
    await Promise.all([
      page.waitForURL(`${plan.base}/admin/moderation`),
      page.click('nav a:has-text("Moderation")'),
    ]);
    const row = page.locator("tr", { hasText: plan.listingTitle });
    await report("queue", { found: await row.count(), text: await shown() });
    await Promise.all([page.waitForURL(/done=/), row.locator('button:has-text("Approve")').click()]);
    await report("approved", { message: await page.textContent(".done"), text: await shown() });
  } else {
    await Promise.all([
      page.waitForURL(`${plan.base}/admin/listings`),
      page.click('nav a:has-text("Listings")'),
    ]);
    await page.fill('input[name="search"]', plan.listingTitle);
    await page.click('form.filters button[type="submit"]');
    await page.click(`a:has-text("${plan.listingTitle}")`);
    await report("listing", { url: page.url(), status: await page.textContent("dd.status") });
    if (plan.scenario === "no-csrf") {
      await page.fill('form[action$="/suspend"] input[name="reason"]', "Posted without its token");
      // What a forged form looks like: everything but the token.
      await page.evaluate(() => {
        document.querySelector('form[action$="/suspend"] input[name="csrf"]').remove();
      });
      const [response] = await Promise.all([
        page.waitForNavigation(),
        page.click('button:has-text("Suspend")'),
      ]);
      await report("refused", { status: response.status(), text: await shown() });
    } else {
      await page.fill('form[action$="/suspend"] input[name="reason"]', "Photos of another property.");
      await Promise.all([page.waitForURL(/done=/), page.click('button:has-text("Suspend")')]);
      await report("suspended", {
        message: await page.textContent(".done"),
        status: await page.textContent("dd.status"),
      });
      await Promise.all([page.waitForURL(/done=listing-restored/), page.click('button:has-text("Restore")')]);
      await report("restored", {
        message: await page.textContent(".done"),
        status: await page.textContent("dd.status"),
      });
    }
  }
  await page.click('button:has-text("Sign out")');
  await page.waitForURL(`${plan.base}/admin/login`);
  await report("signed-out", { url: page.url() });
  await report("done", { violations });
} catch (error) {
  process.stderr.write(`${error.stack}\n\npage ${page.url()}:\n${await page.content()}\n`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
