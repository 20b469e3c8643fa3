import fs from "node:fs/promises";
import { Client as QstashClient } from "@upstash/qstash";
import { Redis } from "@upstash/redis";
import { refreshApiKeyCacheForUser } from "../app/models/api-keys.server";
import { loadRawEnv } from "../app/utils/env.server";
import { hourBucket } from "../app/utils/period";
import { createTestApiKey, createTestSheet } from "../tests/factories";
import { expect, seedHourlyHistory, seedKeyHourlyHistory, test, uniqueEmail } from "./fixtures";

const CSV = ["sku,name,price", "A-1,Anvil,120", "B-2,Bucket,7.5", "C-3,Crate,19"].join("\n");
const LIVE_TIMEOUT = 12_000;

/** The server's clients for the e2e services (global-setup put their addresses in this process's environment). */
function e2eRedis(): Redis {
  return new Redis({
    url: process.env.UPSTASH_REDIS_REST_URL!,
    token: process.env.UPSTASH_REDIS_REST_TOKEN!,
    enableTelemetry: false,
  });
}

test("a customer watches the live counter move, the sync persist it, and the quota run out", async ({
  page,
  request,
  db,
  baseURL,
}) => {
  test.setTimeout(120_000);
  const email = uniqueEmail("dashboard");
  const password = "a long enough password";
  try {
    // Sign up: a new customer lands on the dashboard and is shown how to make a first call, not an empty chart.
    await page.goto("/signup");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign up" }).click();
    await expect(page).toHaveURL(/\/dashboard$/);
    await expect(page.getByTestId("first-call-guide")).toBeVisible();
    // Nothing done yet, and no command with a placeholder key that would fail if pasted.
    await expect(page.getByTestId("onboarding-step-1")).toHaveAttribute("data-done", "false");
    await expect(page.getByTestId("first-call-guide")).not.toContainText("sm_live_…");
    await expect(page.getByTestId("live-used")).toHaveText("0");
    const syncBefore = await page.getByTestId("last-sync").getAttribute("data-finished-at");
    const user = await db.user.findUniqueOrThrow({ where: { email }, select: { id: true } });

    // Upload a CSV.
    await page.getByRole("link", { name: "Sheets", exact: true }).click();
    await expect(page.getByRole("heading", { name: "Sheets", level: 1 })).toBeVisible();
    await page
      .getByLabel("CSV file")
      .setInputFiles({ name: "tools.csv", mimeType: "text/csv", buffer: Buffer.from(CSV) });
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await expect(page.getByRole("heading", { name: "tools" })).toBeVisible();
    const sheet = await db.sheet.findFirstOrThrow({ where: { userId: user.id }, select: { id: true } });

    // Create a key (shown once).
    await page.getByRole("link", { name: "API keys", exact: true }).click();
    await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
    await page.getByLabel("Name").fill("e2e");
    await page.getByRole("button", { name: "Create key", exact: true }).click();
    await expect(page.getByTestId("new-api-key")).toBeVisible();
    const apiKey = (await page.getByTestId("new-api-key").textContent())!.trim();
    expect(apiKey).toMatch(/^sm_live_/);

    // The dashboard now lists the sheet with its endpoint, still with the first-call guide.
    await page.getByRole("link", { name: "Dashboard", exact: true }).click();
    await expect(page.getByRole("heading", { name: "Dashboard", level: 1 })).toBeVisible();
    await expect(page.getByTestId("sheet-summary")).toContainText(`${baseURL}/api/v1/sheets/${sheet.id}`);
    await expect(page.getByTestId("sheet-summary")).toContainText("3 rows");
    await expect(page.getByTestId("first-call-guide")).toContainText(`/api/v1/sheets/${sheet.id}`);
    await expect(page.getByTestId("onboarding-step-1")).toHaveAttribute("data-done", "true");
    await expect(page.getByTestId("onboarding-step-2")).toHaveAttribute("data-done", "true");
    await expect(page.getByTestId("onboarding-step-3")).toHaveAttribute("data-done", "false");

    // Seven calls from outside the browser; the counter catches up on its own, without a reload.
    const callApi = () => request.get(`/api/v1/sheets/${sheet.id}`, { headers: { Authorization: `Bearer ${apiKey}` } });
    for (let i = 0; i < 7; i++) expect((await callApi()).status()).toBe(200);
    let navigations = 0;
    page.on("framenavigated", (frame) => {
      if (frame === page.mainFrame()) navigations++;
    });
    await expect(page.getByTestId("live-used")).toHaveText("7", { timeout: LIVE_TIMEOUT });
    expect(navigations).toBe(0);
    await expect(page.getByTestId("live-counter")).toContainText("993");
    // The guide ticks the call off, and the chart joins it; its only point so far is the live one.
    await expect(page.getByTestId("first-call-received")).toBeVisible();
    await expect(page.getByTestId("onboarding-step-3")).toHaveAttribute("data-done", "true");
    await expect(page.getByTestId("usage-chart")).toHaveAttribute("data-synced-points", "0");
    await expect(page.getByTestId("usage-chart").locator(".recharts-surface")).toBeVisible();

    // A signed sync, delivered by the local QStash stand-in to the cron route as QStash would.
    const raw = loadRawEnv();
    const qstash = new QstashClient({
      baseUrl: process.env.QSTASH_URL!,
      token: raw.QSTASH_TOKEN!,
      enableTelemetry: false,
    });
    const publishedAt = new Date();
    await qstash.publishJSON({ url: `${baseURL}/api/cron/update-usage`, body: {} });
    await expect
      .poll(
        async () =>
          db.usageSnapshot.findUnique({
            where: { userId_hour: { userId: user.id, hour: hourBucket(new Date()) } },
            select: { used: true },
          }),
        { timeout: 20_000 },
      )
      .toEqual({ used: 7 });
    const run = await db.syncRun.findFirstOrThrow({
      where: { startedAt: { gte: new Date(publishedAt.getTime() - 1000) }, status: "succeeded" },
      orderBy: { finishedAt: "desc" },
    });
    expect(run.messageId).toBeTruthy();

    await page.reload();
    await expect(page.getByTestId("usage-chart")).toHaveAttribute("data-synced-points", "1");
    await expect(page.getByTestId("usage-chart").locator(".recharts-surface")).toBeVisible();
    const syncAfter = await page.getByTestId("last-sync").getAttribute("data-finished-at");
    expect(syncAfter).toBeTruthy();
    expect(syncAfter).not.toBe(syncBefore);
    await expect(page.getByTestId("last-sync")).toHaveAttribute("data-status", "succeeded");
    await expect(page.getByTestId("last-sync")).toContainText(/just now|minute ago/);

    // Use up the quota: lower the limit to 10 (as an operator would, refreshing the key cache), then call until
    // the API refuses. Exactly three more calls fit.
    await db.user.update({ where: { id: user.id }, data: { monthlyLimit: 10 } });
    await refreshApiKeyCacheForUser(e2eRedis(), db, user.id);
    // The app keeps each key for up to a second in memory on top of the Redis cache.
    await page.waitForTimeout(1100);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await callApi()).status());
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await callApi();
    expect(refused.status()).toBe(429);
    expect(refused.headers()["retry-after"]).toMatch(/^\d+$/);
    expect(refused.headers()["content-type"]).toContain("application/problem+json");
    // The banner promises that the usage endpoint keeps answering; hold it to that.
    const usage = await request.get("/api/v1/usage", { headers: { Authorization: `Bearer ${apiKey}` } });
    expect(usage.status()).toBe(200);
    expect(await usage.json()).toMatchObject({ used: 10, limit: 10, remaining: 0 });

    // The 100 % banner appears on its own and says what happens next.
    const banner = page.getByTestId("quota-banner");
    await expect(banner).toHaveAttribute("data-level", "exhausted", { timeout: LIVE_TIMEOUT });
    await expect(banner).toContainText("429 Too Many Requests");
    await expect(banner).toContainText(/until your quota resets on \w+ 1, \d{4} at 00:00 UTC/);
    await expect(page.getByTestId("live-used")).toHaveText("10");
    await expect(page.getByTestId("live-counter")).toContainText("/ 10");
    await expect(page.getByRole("progressbar")).toHaveAttribute("aria-valuenow", "10");

    await page.screenshot({ path: "test-results/dashboard-desktop.png", fullPage: true });

    // A phone: everything fits the width, nothing scrolls sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(page.getByTestId("usage-chart").locator(".recharts-surface")).toBeVisible();
    // The chart follows its container through a ResizeObserver, a frame or two after the viewport changed: poll
    // until the page has settled, and fail if it never fits.
    await expect
      .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth))
      .toBeLessThanOrEqual(0);
    await page.screenshot({ path: "test-results/dashboard-phone.png", fullPage: true });
  } finally {
    await db.user.deleteMany({ where: { email } });
  }
});

test("the chart range lives in the URL and is reachable from the keyboard", async ({
  loggedInPage: page,
  user,
  db,
}) => {
  // Two days of history so every range has points to draw.
  await seedHourlyHistory(db, user.id, 48, 5);

  await page.goto("/dashboard?range=nonsense");
  const chart = page.getByTestId("usage-chart");
  await expect(chart).toHaveAttribute("data-range", "7d");
  await expect(chart.getByRole("heading")).toHaveText("Usage over the last 7 days");

  // Tab from the top of the page to the "30 d" choice and follow it with Enter.
  const target = page.getByRole("link", { name: "Show the last 30 days" });
  for (let i = 0; i < 25 && !(await target.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press("Tab");
  }
  await expect(target).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/\?range=30d$/);
  await expect(chart).toHaveAttribute("data-range", "30d");
  await expect(page.getByRole("link", { name: "Show the last 30 days" })).toHaveAttribute("aria-current", "page");

  await page.goto("/dashboard?range=24h");
  await expect(chart).toHaveAttribute("data-range", "24h");
  await expect(chart).toHaveAttribute("data-synced-points", "24");
});

test("the live counter stops polling while the tab is hidden and refreshes as soon as it is shown", async ({
  loggedInPage: page,
}) => {
  await page.goto("/dashboard");
  const isPoll = (url: string) => new URL(url).pathname === "/dashboard/live";
  await page.waitForRequest((r) => isPoll(r.url()), { timeout: 8000 });

  let polls = 0;
  page.on("request", (r) => {
    if (isPoll(r.url())) polls++;
  });
  const setHidden = (hidden: boolean) =>
    page.evaluate((value) => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => value });
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);

  await setHidden(true);
  polls = 0;
  // More than one polling interval: nothing may be asked for while nobody can see the page.
  await page.waitForTimeout(6500);
  expect(polls).toBe(0);
  await expect(page.getByTestId("live-used")).toHaveText("0");

  const shown = page.waitForRequest((r) => isPoll(r.url()), { timeout: 1500 });
  await setHidden(false);
  await shown;
  await expect(page.getByTestId("live-used")).toHaveText("0");
});

test("small usage on a big limit reads clearly, switches to bars per day, and downloads as CSV", async ({
  loggedInPage: page,
  user,
  db,
  request,
}, testInfo) => {
  // 2 calls an hour for 3 hours on the default 1,000-call plan: 6 calls, 0.6 %.
  await seedHourlyHistory(db, user.id, 3, 2);
  await page.goto("/dashboard");
  const chart = page.getByTestId("usage-chart");
  const figure = chart.locator("figure");
  await expect(chart.locator(".recharts-surface")).toBeVisible();
  await expect(page.getByTestId("live-used")).toHaveText("6");
  await expect(page.getByTestId("live-percent")).toHaveText("(0.6 %)");
  await expect(chart.getByTestId("chart-percent")).toHaveText("0.6 %");

  // The axis fits 6 calls, not 1,000: it tops out at 8, and the limit is a labelled marker above the scale.
  await expect(figure).toHaveAttribute("data-limit-on-scale", "false");
  await expect(figure).toHaveAttribute("data-y-max", "8");
  const tick = (text: string) => chart.locator(".recharts-cartesian-axis-tick-value").getByText(text, { exact: true });
  await expect(tick("8")).toHaveCount(1);
  await expect(tick("1,200")).toHaveCount(0);
  await expect(chart.getByTestId("limit-marker")).toBeVisible();
  await expect(chart.getByTestId("limit-marker")).toContainText("Limit 1,000 ↑");
  await expect(chart.locator(".recharts-reference-line")).toHaveCount(0);

  // "Show limit" draws the limit on the scale; "Fit to usage" goes back.
  await chart.getByRole("button", { name: "Show limit" }).click();
  await expect(figure).toHaveAttribute("data-limit-on-scale", "true");
  await expect(chart.getByTestId("limit-marker")).toHaveCount(0);
  await expect(chart.locator(".recharts-reference-line")).toHaveCount(1);
  await expect(tick("1,200")).toHaveCount(1);
  await chart.getByRole("button", { name: "Fit to usage" }).click();
  await expect(chart.getByTestId("limit-marker")).toBeVisible();

  // Every value is readable without hovering.
  await chart.getByText("Show the values as a table").click();
  // Three synced hours and the live value.
  await expect(chart.getByTestId("usage-table").locator("tbody tr")).toHaveCount(4);
  await expect(chart.getByTestId("usage-table").locator("tbody tr").last()).toContainText("6");

  const desktop = await page.screenshot({ path: "test-results/dashboard-chart-desktop.png", fullPage: true });
  await testInfo.attach("dashboard chart, desktop", { body: desktop, contentType: "image/png" });

  // Per day: bars of the calls in each day, 6 in all.
  await chart.getByRole("link", { name: "Per day" }).click();
  await expect(page).toHaveURL(/[?&]view=day/);
  await expect(chart).toHaveAttribute("data-view", "day");
  await expect(chart.locator(".recharts-bar-rectangle").first()).toBeVisible();
  await expect(chart.getByRole("link", { name: "Per day" })).toHaveAttribute("aria-current", "page");
  await expect(figure).toContainText("6 calls from");

  // The CSV of the range shown.
  const downloading = page.waitForEvent("download");
  await chart.getByRole("link", { name: "Download CSV" }).click();
  const download = await downloading;
  expect(download.suggestedFilename()).toMatch(/^sheetmeter-usage-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv$/);
  const csv = await fs.readFile(await download.path(), "utf8");
  const [header, ...lines] = csv.trimEnd().split("\r\n");
  expect(header).toBe("period,day,used,calls");
  const rows = lines.map((line) => line.split(","));
  expect(rows.reduce((sum, row) => sum + Number(row[3]), 0)).toBe(6);
  expect(rows.at(-1)![2]).toBe("6");

  // The same history through the API with a key, over the wire, unmetered.
  const { key } = await createTestApiKey(db, user.id, "export");
  const exported = await request.get("/api/v1/usage/history?granularity=day", {
    headers: { Authorization: `Bearer ${key}` },
  });
  expect(exported.status()).toBe(200);
  expect(exported.headers()["content-security-policy"]).toContain("default-src 'none'");
  const body = await exported.json();
  expect(body.meta.granularity).toBe("day");
  expect(body.data.reduce((sum: number, row: { calls: number }) => sum + row.calls, 0)).toBe(6);
  const usage = await request.get("/api/v1/usage", { headers: { Authorization: `Bearer ${key}` } });
  expect((await usage.json()).used).toBe(6);

  // A phone: nothing scrolls sideways, in either view.
  await page.setViewportSize({ width: 390, height: 844 });
  await expect(chart.locator(".recharts-surface")).toBeVisible();
  await expect
    .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth))
    .toBeLessThanOrEqual(0);
  const phoneBars = await page.screenshot({ path: "test-results/dashboard-chart-phone-day.png", fullPage: true });
  await testInfo.attach("dashboard chart per day, phone", { body: phoneBars, contentType: "image/png" });
  await chart.getByRole("link", { name: "Cumulative" }).click();
  await expect(chart).toHaveAttribute("data-view", "cumulative");
  await expect(chart.getByTestId("limit-marker")).toBeVisible();
  await expect
    .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth))
    .toBeLessThanOrEqual(0);
  const phone = await page.screenshot({ path: "test-results/dashboard-chart-phone.png", fullPage: true });
  await testInfo.attach("dashboard chart, phone", { body: phone, contentType: "image/png" });
});

test("calls by key: two keys' calls in a table, one key drawn on the chart, the limit in force as a step", async ({
  loggedInPage: page,
  user,
  db,
  request,
}, testInfo) => {
  // 6 calls synced over 3 hours, the first two hours on a 500-call plan, then 4 live calls: 3 with one key, 1 with
  // the other.
  await seedHourlyHistory(db, user.id, 3, 2);
  const hours = await db.usageSnapshot.findMany({ where: { userId: user.id }, orderBy: { hour: "asc" } });
  await db.usageSnapshot.updateMany({
    where: { userId: user.id, hour: { lte: hours[1].hour } },
    data: { limit: 500 },
  });
  const { sheetId } = await createTestSheet(db, user.id, { name: "stock", csv: CSV });
  const web = await createTestApiKey(db, user.id, "Web shop");
  const mobile = await createTestApiKey(db, user.id, "Mobile app");
  await seedKeyHourlyHistory(db, user.id, web.summary.id, 3, 1);
  for (const key of [web.key, web.key, web.key, mobile.key]) {
    const response = await request.get(`/api/v1/sheets/${sheetId}`, { headers: { Authorization: `Bearer ${key}` } });
    expect(response.status()).toBe(200);
  }

  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto("/dashboard");
  const byKey = page.getByTestId("usage-by-key");
  const row = (name: string) => byKey.locator("tbody tr").filter({ hasText: name });
  await expect(byKey.locator("tbody tr")).toHaveCount(2);
  await expect(row("Web shop").getByTestId("key-calls")).toHaveText("3");
  await expect(row("Web shop").getByTestId("key-share")).toHaveText("75 %");
  await expect(row("Mobile app").getByTestId("key-calls")).toHaveText("1");
  await expect(row("Mobile app").getByTestId("key-share")).toHaveText("25 %");
  await expect(row("Web shop")).toContainText(web.summary.prefix);

  // All keys: the account's line, whose limit changed from 500 to 1,000 within the range.
  const chart = page.getByTestId("usage-chart");
  await expect(chart).toHaveAttribute("data-key", "all");
  await expect(chart.getByTestId("limit-changed")).toBeVisible();
  await chart.getByRole("button", { name: "Show limit" }).click();
  await expect(chart.locator(".recharts-line-curve").first()).toBeVisible();

  // One key, from the table's link: its own synced line (1, 2, 3) and its live count.
  await row("Web shop").getByRole("link", { name: "Show Web shop on the chart" }).click();
  await expect(page).toHaveURL(new RegExp(`[?&]key=${web.summary.id}`));
  await expect(chart).toHaveAttribute("data-key", web.summary.id);
  await expect(chart.getByRole("heading", { level: 2 })).toContainText("Web shop");
  await expect(chart.locator(".recharts-surface")).toBeVisible();
  await chart.getByText("Show the values as a table").click();
  const values = chart.getByTestId("usage-table").locator("tbody tr");
  await expect(values.first()).toContainText("1");
  await expect(values.last()).toContainText("3");
  const desktop = await page.screenshot({ path: "test-results/dashboard-by-key-desktop.png", fullPage: true });
  await testInfo.attach("calls by key, one key on the chart, desktop", { body: desktop, contentType: "image/png" });

  // The select goes to another key, then back to all keys.
  await chart.getByLabel("Chart calls of").selectOption({ label: `Mobile app (${mobile.summary.prefix}…)` });
  await expect(chart).toHaveAttribute("data-key", mobile.summary.id);
  // Its calls are not synced yet: the line is its live count alone.
  await expect(chart.getByTestId("chart-percent")).toBeVisible();
  await chart.getByLabel("Chart calls of").selectOption({ label: "All keys" });
  await expect(chart).toHaveAttribute("data-key", "all");

  // A phone: the table fits without sideways scrolling.
  await page.setViewportSize({ width: 390, height: 844 });
  await row("Web shop").getByRole("link", { name: "Show Web shop on the chart" }).click();
  await expect(chart).toHaveAttribute("data-key", web.summary.id);
  await expect
    .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth))
    .toBeLessThanOrEqual(0);
  const phone = await page.screenshot({ path: "test-results/dashboard-by-key-phone.png", fullPage: true });
  await testInfo.attach("calls by key, one key on the chart, phone", { body: phone, contentType: "image/png" });

  // The keys page shows each key's calls this month.
  await page.goto("/keys");
  await expect(
    page.getByRole("listitem").filter({ hasText: "Web shop" }).getByTestId("key-calls-this-month"),
  ).toHaveText("3 calls this month");
  await expect(
    page.getByRole("listitem").filter({ hasText: "Mobile app" }).getByTestId("key-calls-this-month"),
  ).toHaveText("1 call this month");
});
