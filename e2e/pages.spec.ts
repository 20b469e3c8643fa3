import fs from "node:fs";
import type { Page } from "@playwright/test";
import { createApiKey } from "../app/models/api-keys.server";
import { importSheet } from "../app/models/csv-import.server";
import { expectNoAxeViolations } from "./a11y";
import { expect, seedHourlyHistory, test } from "./fixtures";

/**
 * Every page, signed out and signed in, at a desktop width and a phone's: no WCAG 2 A/AA violation that axe-core can
 * find, nothing wider than the screen, and a screenshot of each for review (test-results/pages/).
 */

const WIDTHS = [
  { name: "desktop", width: 1280, height: 900 },
  { name: "phone", width: 390, height: 844 },
] as const;

// Wider than a phone on purpose, so the preview table and the examples must scroll inside their boxes.
const CSV = `country,capital,population,area_km2,continent,currency,calling_code\nFrance,Paris,68170000,643801,Europe,EUR,+33\nJapan,Tokyo,124500000,377975,Asia,JPY,+81\n`;

async function checkPage(page: Page, path: string, name: string, ready: (page: Page) => Promise<void>) {
  for (const size of WIDTHS) {
    await page.setViewportSize({ width: size.width, height: size.height });
    await page.goto(path);
    await ready(page);
    await expectNoAxeViolations(page, `${path} at ${size.width} px`);
    await expect
      .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth), {
        message: `${path} fits ${size.width} px`,
      })
      .toBeLessThanOrEqual(0);
    await page.screenshot({ path: `test-results/pages/${name}-${size.name}.png`, fullPage: true });
  }
}

const heading = (name: string | RegExp) => async (page: Page) => {
  await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
};

test("the signed-out pages have no WCAG violation and fit a phone", async ({ page, consoleGuard }) => {
  test.setTimeout(120_000);
  consoleGuard.allowStatus(404, "the 404 page's own document answers 404");
  await checkPage(page, "/", "home", heading(/.+/));
  await checkPage(page, "/login", "login", heading("Log in"));
  await checkPage(page, "/signup", "signup", heading(/Create|Sign up/));
  await checkPage(page, "/docs", "docs-signed-out", heading("API documentation"));
  await checkPage(page, "/no-such-page", "not-found-signed-out", heading("Page not found"));
});

test("the signed-in pages have no WCAG violation and fit a phone", async ({
  loggedInPage: page,
  user,
  db,
  consoleGuard,
}) => {
  test.setTimeout(180_000);
  consoleGuard.allowStatus(404, "the 404 page's own document answers 404");
  await seedHourlyHistory(db, user.id, 24, 3);
  const { sheetId } = await importSheet(db, { userId: user.id, name: "countries", bytes: Buffer.from(CSV) });
  await createApiKey(db, user.id, "Website");

  await checkPage(page, "/dashboard", "dashboard", async (p) => {
    await expect(p.getByTestId("usage-chart").locator(".recharts-surface")).toBeVisible();
  });
  await checkPage(page, `/sheets?preview=${sheetId}`, "sheets", async (p) => {
    await expect(p.getByRole("table")).toBeVisible();
    await p.getByText("API examples").click();
    await expect(p.getByTestId("sheet-example").first()).toBeVisible();
  });
  await checkPage(page, "/keys", "keys", heading("API keys"));
  await checkPage(page, "/settings", "settings", heading(/Settings/));
  await checkPage(page, "/docs", "docs", heading("API documentation"));
  await checkPage(page, "/no-such-page", "not-found", heading("Page not found"));
});

test("on a phone the preview table says it scrolls, and the account menu shows who is signed in", async ({
  loggedInPage: page,
  user,
  db,
}) => {
  const { sheetId } = await importSheet(db, { userId: user.id, name: "countries", bytes: Buffer.from(CSV) });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`/sheets?preview=${sheetId}`);
  await expect(page.getByTestId("scroll-hint").first()).toBeVisible();
  // The endpoint wraps rather than being cut off: its sheet id is on the screen.
  await expect(page.getByText(sheetId, { exact: false }).first()).toBeVisible();

  await page.getByTestId("account-menu").getByText("Account").click();
  await expect(page.getByTestId("account-menu")).toContainText(user.email);
  await expect(page.getByTestId("account-menu").getByRole("button", { name: "Log out" })).toBeVisible();
});

test.describe("on a touch screen", () => {
  test.use({ hasTouch: true, viewport: { width: 390, height: 844 } });

  test("chart values show on a tap and from the arrow keys, and are listed for screen readers", async ({
    loggedInPage: page,
    user,
    db,
  }) => {
    await seedHourlyHistory(db, user.id, 24, 3);
    await page.goto("/dashboard?range=24h");
    const chart = page.getByTestId("usage-chart");
    const plot = chart.getByRole("application", { name: "Usage chart" });
    await expect(plot).toBeVisible();
    // Always in the accessibility tree, visually hidden until asked for.
    await expect(page.getByRole("table", { name: /Calls so far this month/ })).toBeAttached();
    await expect(chart.getByTestId("usage-table-box")).toHaveClass(/sr-only/);

    await plot.scrollIntoViewIfNeeded();
    const tooltip = chart.locator(".recharts-tooltip-wrapper");

    // From the keyboard: the plot is a tab stop, and the arrow keys walk the values.
    await plot.focus();
    await page.keyboard.press("ArrowRight");
    await expect(tooltip).toContainText("calls this month");
    const byKeyboard = await tooltip.textContent();
    await page.keyboard.press("ArrowRight");
    await expect(tooltip).not.toHaveText(byKeyboard!);
    await expect(tooltip).toContainText("calls this month");

    // By touch: a tap shows the value under the finger; a second tap elsewhere shows that hour's instead.
    const box = (await plot.boundingBox())!;
    await page.touchscreen.tap(box.x + box.width * 0.7, box.y + box.height / 2);
    await expect(tooltip).toContainText("calls this month");
    const first = await tooltip.textContent();
    await page.touchscreen.tap(box.x + box.width * 0.3, box.y + box.height / 2);
    await expect(tooltip).not.toHaveText(first!);
    await expect(tooltip).toContainText("calls this month");

    await chart.getByRole("button", { name: "Show the values as a table" }).tap();
    await expect(chart.getByTestId("usage-table")).toBeVisible();
    await page.screenshot({ path: "test-results/pages/dashboard-chart-tap-phone.png", fullPage: true });
  });
});

test("the /docs page and docs/api.md document the same parameters, error types and headers", async ({ page }) => {
  const file = fs.readFileSync(new URL("../docs/api.md", import.meta.url), "utf8");
  // Every parameter in the file's tables (first column) and every problem type in its error table.
  const parameters = [...file.matchAll(/^\| `([^`]+)`\s+\|/gm)].map((match) => match[1]);
  const problemTypes = [...file.matchAll(/^\| \d{3}\s+\| `([a-z-]+)`/gm)].map((match) => match[1]);
  expect(parameters).toEqual(expect.arrayContaining(["limit", "offset", "sort", "order", "search", "fields", "from"]));
  expect(problemTypes.length).toBeGreaterThanOrEqual(7);

  await page.goto("/docs");
  const text = await page.locator("main").innerText();
  for (const name of [...parameters, ...problemTypes]) expect(text, `/docs names ${name}`).toContain(name);
  for (const header of ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After", "If-None-Match"]) {
    expect(text, `/docs names ${header}`).toContain(header);
  }
  expect(text).toContain("00:00 UTC on the 1st");
});
