import { csvHandler, startSourceServer, type SourceServer } from "../tests/helpers/source-server";
import { expect, test } from "./fixtures";

/**
 * A sheet from a URL, end to end: the source is a plain HTTP server on loopback started by this spec (the e2e server
 * runs with SHEET_FETCH_ALLOW_LOOPBACK=1, which production refuses), the page fetches it on creation and on
 * "Refresh now", and shows when the last refresh ran and how it went.
 */
let source: SourceServer;
test.beforeAll(async () => {
  source = await startSourceServer();
});
test.afterAll(async () => {
  await source.close();
});

test("create a sheet from a URL, see the refresh time, refresh it, and see a failed refresh keep the rows", async ({
  loggedInPage: page,
}) => {
  source.handle("/prices.csv", csvHandler("item,price\napple,1\npear,2\n", { etag: '"v1"' }));
  await page.goto("/sheets");
  await page.getByLabel("CSV URL").fill(`${source.origin}/prices.csv`);
  await page.getByLabel("Refresh", { exact: true }).first().selectOption("hourly");
  await page.getByRole("button", { name: "Create from URL" }).click();

  await expect(page.getByRole("status").filter({ hasText: "Imported 2 rows" })).toBeVisible();
  const entry = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "prices" }) });
  await expect(entry.getByTestId("sheet-source")).toContainText(`${source.origin}/prices.csv`);
  const lastRefresh = entry.getByTestId("last-refresh");
  await expect(lastRefresh).toContainText(/Last refresh: \w{3} \d{1,2}, \d{4}, .+ UTC · updated/);
  await expect(entry.getByRole("combobox")).toHaveValue("hourly");

  // Changed at the source: "Refresh now" sends the ETag, gets the new rows.
  source.handle("/prices.csv", csvHandler("item,price\napple,1\npear,2\nplum,3\n", { etag: '"v2"' }));
  await entry.getByRole("button", { name: "Refresh now" }).click();
  await expect(entry).toContainText("3 rows");
  await expect(lastRefresh).toContainText("updated");
  expect(source.requests.at(-1)?.headers["if-none-match"]).toBe('"v1"');

  // The source breaks: the error and time are shown, the rows stay.
  source.handle("/prices.csv", (_request, response) => response.writeHead(500).end("down"));
  await entry.getByRole("button", { name: "Refresh now" }).click();
  await expect(entry.getByRole("status")).toContainText("The source answered HTTP 500.");
  await expect(lastRefresh).toContainText("failed");
  await expect(entry).toContainText("3 rows");

  // The schedule can be changed.
  await entry.getByRole("combobox").selectOption("manual");
  const saved = page.waitForResponse((response) => response.request().method() === "POST" && response.ok());
  await entry.getByRole("button", { name: "Save schedule" }).click();
  await saved;
  await page.reload();
  await expect(entry.getByRole("combobox")).toHaveValue("manual");
});

test("a URL inside the network is refused with a clear error", async ({ loggedInPage: page, consoleGuard }) => {
  consoleGuard.allowStatus(400, "the refused URL is answered with 400 next to the form");
  await page.goto("/sheets");
  await page.getByLabel("CSV URL").fill("https://169.254.169.254/latest/meta-data/");
  await page.getByRole("button", { name: "Create from URL" }).click();
  await expect(page.getByRole("alert")).toContainText("Refused to connect to a link-local address");
});

test("a URL sheet's source and status fit a 390 px wide phone", async ({ loggedInPage: page }) => {
  source.handle("/a-rather-long-path/for-a-published-sheet-on-a-phone.csv", csvHandler("a,b\n1,2\n"));
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/sheets");
  await page.getByLabel("CSV URL").fill(`${source.origin}/a-rather-long-path/for-a-published-sheet-on-a-phone.csv`);
  await page.getByRole("button", { name: "Create from URL" }).click();
  await expect(page.getByTestId("last-refresh")).toContainText("updated");
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: "test-results/playwright/sheets-url-phone.png", fullPage: true });
});
