import { expect, test } from "./fixtures";

const CSV = 'city;population;capital\nParis;2100000;true\nLyon;520000;false\n"Saint-Étienne";170000;false\n';

test("upload a CSV, create a key, call the API and get the rows back", async ({ loggedInPage: page, request }) => {
  await page.goto("/sheets");
  await expect(page.getByText("No sheets yet")).toBeVisible();

  await page
    .getByLabel("CSV file")
    .setInputFiles({ name: "cities.csv", mimeType: "text/csv", buffer: Buffer.from(CSV) });
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page.getByRole("status")).toContainText("Imported 3 rows");
  await expect(page.getByRole("heading", { name: "cities" })).toBeVisible();
  const preview = page.getByRole("table");
  await expect(preview.getByRole("columnheader")).toHaveText(["city", "population", "capital"]);
  await expect(preview.getByRole("row").nth(3)).toContainText("Saint-Étienne");

  const endpoint = (await page.locator("code", { hasText: "/api/v1/sheets/" }).textContent())!.trim();
  expect(endpoint).toMatch(/\/api\/v1\/sheets\/\w+$/);

  await page.getByRole("link", { name: "API keys" }).click();
  await expect(page.getByText("No API keys yet")).toBeVisible();
  await page.getByLabel("Name").fill("Playwright");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.getByTestId("new-api-key").textContent())!.trim();
  expect(key).toMatch(/^sm_live_[A-Za-z0-9_-]{43}$/);
  await expect(page.getByText(`${key.slice(0, 14)}…`)).toBeVisible();

  const response = await request.get(`${endpoint}?sort=population&order=desc`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  expect(response.status()).toBe(200);
  expect(response.headers()["ratelimit-limit"]).toBe("1000");
  expect(response.headers()["ratelimit-remaining"]).toBe("999");
  expect(await response.json()).toMatchObject({
    data: [
      { city: "Paris", population: 2100000, capital: true },
      { city: "Lyon", population: 520000, capital: false },
      { city: "Saint-Étienne", population: 170000, capital: false },
    ],
    meta: { total: 3, limit: 100, offset: 0, version: 1 },
  });

  // Over the wire, HEAD and OPTIONS (which Remix would answer with the loader) get 405 and are never metered.
  for (const method of ["HEAD", "OPTIONS"]) {
    const other = await request.fetch(endpoint, { method, headers: { Authorization: `Bearer ${key}` } });
    expect(other.status(), method).toBe(405);
    expect(other.headers()["allow"], method).toBe("GET");
    expect(other.headers()["content-type"], method).toBe("application/problem+json");
  }
  const after = await request.get(endpoint, { headers: { Authorization: `Bearer ${key}` } });
  expect(after.headers()["ratelimit-remaining"]).toBe("998");

  // Revoked in the UI, refused by the API.
  await page.getByText("Revoke…").click();
  await page.getByRole("button", { name: "Revoke key" }).click();
  await expect(page.getByText("Revoked", { exact: true })).toBeVisible();
  const refused = await request.get(endpoint, { headers: { Authorization: `Bearer ${key}` } });
  expect(refused.status()).toBe(401);
  expect(refused.headers()["content-type"]).toBe("application/problem+json");
});

test("the sheets and keys pages fit a 390 px wide phone", async ({ loggedInPage: page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/sheets");
  await page.getByLabel("CSV file").setInputFiles({
    name: "a-sheet-with-a-rather-long-file-name-for-a-phone.csv",
    mimeType: "text/csv",
    buffer: Buffer.from(
      `${Array.from({ length: 12 }, (_, i) => `column_number_${i}`).join(",")}\n${"1,".repeat(11)}1\n`,
    ),
  });
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page.getByRole("status")).toContainText("Imported 1 row");
  const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
  expect(await pageWidth()).toBeLessThanOrEqual(390);

  await page.goto("/keys");
  await page.getByLabel("Name").fill("Phone");
  await page.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByTestId("new-api-key")).toBeVisible();
  expect(await pageWidth()).toBeLessThanOrEqual(390);
});

test("a file over 10 MB is refused with a message and nothing is created", async ({ loggedInPage: page, db, user }) => {
  await page.goto("/sheets");
  const big = Buffer.alloc(10 * 1024 * 1024 + 10, "a");
  await page.getByLabel("CSV file").setInputFiles({ name: "big.csv", mimeType: "text/csv", buffer: big });
  await page.getByRole("button", { name: "Upload" }).click();
  await expect(page.getByRole("alert")).toContainText("larger than 10 MB");
  expect(await db.sheet.count({ where: { userId: user.id } })).toBe(0);
});
