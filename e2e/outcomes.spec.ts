import { createTestApiKey, createTestSheet } from "../tests/factories";
import { expect, test } from "./fixtures";

const CSV = ["sku,name,price", "A-1,Anvil,120", "B-2,Bucket,7.5"].join("\n");

/** The key with its secret part changed: what a consumer with a mistyped or truncated key sends. */
const wrongSecret = (key: string) => key.slice(0, 14) + (key[14] === "A" ? "B" : "A").repeat(key.length - 14);

test("a refused call (bad key) shows in the request log, filtered by status and key, and on the chart", async ({
  loggedInPage: page,
  user,
  db,
  request,
}, testInfo) => {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto("/logs");
  await expect(page.getByRole("heading", { name: "Request log", level: 1 })).toBeVisible();
  await expect(page.getByText("No requests yet")).toBeVisible();

  const { sheetId } = await createTestSheet(db, user.id, { name: "stock", csv: CSV });
  const web = await createTestApiKey(db, user.id, "Web shop");
  const other = await createTestApiKey(db, user.id, "Backoffice");
  const get = (path: string, key: string) => request.get(path, { headers: { Authorization: `Bearer ${key}` } });
  expect((await get(`/api/v1/sheets/${sheetId}?name=Anvil`, web.key)).status()).toBe(200);
  expect((await get(`/api/v1/sheets/${sheetId}`, wrongSecret(web.key))).status()).toBe(401);
  expect((await get("/api/v1/sheets/no-such-sheet", other.key)).status()).toBe(404);

  // The header's link; the log is written within a fraction of a second of the answers.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Logs" }).click();
  await expect(page).toHaveURL(/\/logs$/);
  const rows = page.getByTestId("request-log").locator("tbody tr");
  await expect(async () => {
    await page.reload();
    await expect(rows).toHaveCount(3, { timeout: 1000 });
  }).toPass({ timeout: 10_000 });
  const refused = page.getByTestId("request-log").locator('tr[data-status="401"]');
  await expect(refused).toHaveCount(1);
  await expect(refused).toContainText(`${web.summary.prefix}…`);
  await expect(refused).toContainText(`GET /api/v1/sheets/${sheetId}`);
  // No query values are kept, only the parameters' names.
  await expect(page.locator('tr[data-status="200"]')).toContainText("?name=…");
  await expect(page.getByTestId("request-log")).not.toContainText("Anvil");
  const desktop = await page.screenshot({ path: "test-results/logs-desktop.png", fullPage: true });
  await testInfo.attach("request log, desktop", { body: desktop, contentType: "image/png" });

  await page.getByLabel("Status").selectOption("401");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/status=401/);
  await expect(rows).toHaveCount(1);
  await page.getByLabel("Status").selectOption("all");
  await page.getByLabel("Key").selectOption({ label: `Backoffice (${other.summary.prefix}…)` });
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toHaveAttribute("data-status", "404");
  await page.getByLabel("Status").selectOption("200");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page.getByText("No requests match these filters")).toBeVisible();
  await page.getByRole("link", { name: "Clear filters" }).click();
  await expect(rows).toHaveCount(3);

  // A phone: one card per request, nothing cut off at the side.
  await page.setViewportSize({ width: 390, height: 844 });
  const cards = page.getByTestId("request-log-cards");
  await expect(cards).toBeVisible();
  await expect(cards.locator('li[data-status="401"]')).toContainText(`GET /api/v1/sheets/${sheetId}`);
  await expect
    .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth))
    .toBeLessThanOrEqual(0);
  const phone = await page.screenshot({ path: "test-results/logs-phone.png", fullPage: true });
  await testInfo.attach("request log, phone", { body: phone, contentType: "image/png" });

  // The chart: the cumulative view tells the refused calls, the per-hour bars stack them.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto("/dashboard?range=24h");
  const chart = page.getByTestId("usage-chart");
  await expect(chart.getByTestId("chart-refused")).toContainText("2 calls were refused in this range (401 ×1, 404 ×1)");
  await chart.getByRole("link", { name: "See them per hour" }).click();
  await expect(chart).toHaveAttribute("data-view", "hour");
  await expect(chart.getByTestId("chart-refused")).toHaveText("2 refused");
  await expect(chart.getByText("Refused (400, 401, 404, 429, 503)")).toBeVisible();
  await expect(chart.locator(".recharts-bar-rectangle path[fill='#be123c']").first()).toBeVisible();
  await chart.getByText("Show the values as a table").click();
  await expect(chart.getByTestId("usage-table")).toContainText("2 (401 ×1, 404 ×1)");
  const chartDesktop = await page.screenshot({ path: "test-results/dashboard-refused-desktop.png", fullPage: true });
  await testInfo.attach("refused calls on the chart, desktop", { body: chartDesktop, contentType: "image/png" });

  await page.setViewportSize({ width: 390, height: 844 });
  await expect(chart.getByTestId("chart-refused")).toBeVisible();
  const chartPhone = await page.screenshot({ path: "test-results/dashboard-refused-phone.png", fullPage: true });
  await testInfo.attach("refused calls on the chart, phone", { body: chartPhone, contentType: "image/png" });
});
