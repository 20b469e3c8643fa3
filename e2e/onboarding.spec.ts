import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expectNoAxeViolations } from "./a11y";
import { expect, test, uniqueEmail } from "./fixtures";

const run = promisify(execFile);

// The live counter polls every 5 s.
const LIVE_TIMEOUT = 12_000;

const CSV = "country,capital,population\nFrance,Paris,68170000\nJapan,Tokyo,124500000\nChile,Santiago,19630000\n";

/**
 * The walk: a new customer from sign-up to "First call received" using only what the pages show. The curl
 * command is copied from the page (through the clipboard) and run as a shell would run it.
 */
test("a new customer signs up, uploads a sheet, creates a key, runs the copied curl and sees the first call", async ({
  page,
  context,
  db,
  baseURL,
}) => {
  test.setTimeout(120_000);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseURL });
  const email = uniqueEmail("onboarding");
  try {
    await page.goto("/");
    await page.getByRole("link", { name: "Sign up" }).first().click();
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill("a long enough password");
    await page.getByRole("button", { name: "Sign up" }).click();
    await expect(page).toHaveURL(/\/dashboard$/);

    // Three steps, none done, and no command with a placeholder key in it.
    const guide = page.getByTestId("first-call-guide");
    await expect(guide).toBeVisible();
    for (const step of [1, 2, 3]) {
      await expect(page.getByTestId(`onboarding-step-${step}`)).toHaveAttribute("data-done", "false");
    }
    await expect(guide).not.toContainText("sm_live_…");
    await expectNoAxeViolations(page, "the new customer's dashboard");
    await page.screenshot({ path: "test-results/pages/onboarding-start-desktop.png", fullPage: true });

    // 1. Upload a sheet, from the guide's link.
    await guide.getByRole("link", { name: "Upload a CSV" }).click();
    await expect(page.getByRole("heading", { name: "Sheets", level: 1 })).toBeVisible();
    await page
      .getByLabel("CSV file")
      .setInputFiles({ name: "countries.csv", mimeType: "text/csv", buffer: Buffer.from(CSV) });
    await page.getByRole("button", { name: "Upload", exact: true }).click();
    await expect(page.getByText("Imported 3 rows")).toBeVisible();
    // The sheet's own examples: a filter on its first row's value, sorted by its numeric column.
    await page.getByText("API examples").click();
    const examples = page.getByTestId("sheet-examples");
    await expect(examples).toContainText("?country=France&sort=population&order=desc");
    await expect(examples).toContainText("?fields=country,capital&limit=1");
    await expect(examples).toContainText('"population": 68170000');

    await page.getByRole("link", { name: "Dashboard", exact: true }).click();
    await expect(page.getByTestId("onboarding-step-1")).toHaveAttribute("data-done", "true");
    await expect(page.getByTestId("onboarding-step-2")).toHaveAttribute("data-done", "false");

    // 2. Create a key, from the guide's link; its panel gives a command with the key and the sheet's endpoint.
    await page.getByTestId("first-call-guide").getByRole("link", { name: "Create a key" }).click();
    await page.getByLabel("Name").fill("My laptop");
    await page.getByRole("button", { name: "Create key" }).click();
    const shown = page.getByTestId("new-key-curl");
    await expect(shown).toBeVisible();
    await page.getByRole("button", { name: "Copy the curl command" }).click();
    await expect(page.getByRole("button", { name: "Copy the curl command" })).toHaveText("Copied");
    const curl = await page.evaluate(() => navigator.clipboard.readText());
    expect(curl).toBe((await shown.textContent())!.trim());
    const key = (await page.getByTestId("new-api-key").textContent())!.trim();
    expect(curl).toContain(`Bearer ${key}`);
    expect(curl).toContain(`${baseURL}/api/v1/sheets/`);
    await page.screenshot({ path: "test-results/pages/keys-new-key-desktop.png", fullPage: true });

    await page.getByRole("link", { name: "Dashboard", exact: true }).click();
    await expect(page.getByTestId("onboarding-step-2")).toHaveAttribute("data-done", "true");
    await expect(page.getByTestId("onboarding-step-3")).toHaveAttribute("data-done", "false");
    await expect(page.getByTestId("live-used")).toHaveText("0");

    // 3. Run the copied command exactly as copied, in a shell, while the dashboard is open.
    const { stdout } = await run("sh", ["-c", `${curl} --silent --show-error --fail-with-body --max-time 10`]);
    const body = JSON.parse(stdout) as { data: Record<string, unknown>[]; meta: { total: number } };
    expect(body.meta.total).toBe(3);
    expect(body.data[0]).toEqual({ country: "France", capital: "Paris", population: 68170000 });

    // The counter polls, sees the call, and the guide says so without a reload.
    await expect(page.getByTestId("first-call-received")).toBeVisible({ timeout: LIVE_TIMEOUT });
    await expect(page.getByTestId("first-call-received")).toContainText("First call received");
    await expect(page.getByTestId("onboarding-step-3")).toHaveAttribute("data-done", "true");
    await expect(page.getByTestId("live-used")).toHaveText("1");
    await expectNoAxeViolations(page, "the dashboard after the first call");
    await page.screenshot({ path: "test-results/pages/onboarding-done-desktop.png", fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: "test-results/pages/onboarding-done-phone.png", fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // The docs, from the header.
    await page.getByRole("link", { name: "Docs", exact: true }).click();
    await expect(page.getByRole("heading", { name: "API documentation", level: 1 })).toBeVisible();
    await expect(page.getByRole("region", { name: "Query parameters" })).toContainText("fields=a,b");
  } finally {
    await db.user.deleteMany({ where: { email } });
  }
});
