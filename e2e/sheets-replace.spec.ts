import writeXlsxFile from "write-excel-file/node";
import { createTestApiKey, createTestSheet } from "../tests/factories";
import { expect, test } from "./fixtures";

const XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

test("replace a sheet's data with an XLSX file: same endpoint and key, new rows and version", async ({
  loggedInPage: page,
  db,
  user,
  request,
  consoleGuard,
}) => {
  consoleGuard.allowStatus(400, "a wrong worksheet name is answered with 400 next to the form");
  const { sheetId } = await createTestSheet(db, user.id, { name: "stock", csv: "item,count\nTea,3\nCake,4\n" });
  const { key } = await createTestApiKey(db, user.id, "e2e");
  await page.goto("/sheets");
  const card = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "stock" }) });
  await expect(card.getByTestId("data-updated")).toContainText("version 1");
  const endpoint = (await card.getByTestId("sheet-endpoint").textContent())!.trim();
  const before = await request.get(endpoint, { headers: { Authorization: `Bearer ${key}` } });
  expect((await before.json()).meta.version).toBe(1);

  const workbook = await writeXlsxFile([
    { sheet: "Old", data: [["ignored"], ["x"]] },
    {
      sheet: "Current",
      data: [
        ["item", "count", "since"],
        ["Tea", 5, { value: new Date(Date.UTC(2026, 10, 1)), type: Date, format: "yyyy-mm-dd" }],
      ],
    },
  ]).toBuffer();

  await card.getByText("Replace data…").click();
  const form = card.getByTestId(`replace-${sheetId}`);
  // A wrong worksheet name is refused with a message under this sheet's form, and nothing changes.
  await form
    .getByLabel("Replacement file")
    .setInputFiles({ name: "stock.xlsx", mimeType: XLSX_TYPE, buffer: workbook });
  await form.getByLabel("Worksheet").fill("Nope");
  await form.getByRole("button", { name: "Replace data" }).click();
  await expect(page.getByTestId(`replace-${sheetId}`).getByRole("alert")).toContainText("no worksheet named “Nope”");

  const again = page.getByTestId(`replace-${sheetId}`);
  await again
    .getByLabel("Replacement file")
    .setInputFiles({ name: "stock.xlsx", mimeType: XLSX_TYPE, buffer: workbook });
  await again.getByLabel("Worksheet").fill("Current");
  await again.getByRole("button", { name: "Replace data" }).click();
  await expect(page.getByRole("status")).toContainText("Replaced the data: 1 row");
  const replaced = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: "stock" }) });
  await expect(replaced.getByTestId("data-updated")).toContainText("version 2");
  await expect(replaced.getByRole("table").getByRole("columnheader")).toHaveText(["item", "count", "since"]);
  await expect(replaced.getByTestId("sheet-endpoint")).toHaveText(endpoint);
  await page.screenshot({ path: "test-results/sheets-replaced.png", fullPage: true });

  // The same endpoint and key answer the new rows, with the new version.
  const after = await request.get(`${endpoint}?fields=since,item`, { headers: { Authorization: `Bearer ${key}` } });
  expect(after.status()).toBe(200);
  const body = await after.json();
  expect(body.data).toEqual([{ since: "2026-11-01", item: "Tea" }]);
  expect(body.meta.version).toBe(2);
  expect(after.headers()["etag"]).not.toBe(before.headers()["etag"]);

  // The dashboard says when the data last changed.
  await page.goto("/dashboard");
  await expect(page.getByTestId("sheet-summary").getByTestId("sheet-data-updated")).toContainText("Data last changed");
});

test("the replace form fits a 390 px wide phone", async ({ loggedInPage: page, db, user }) => {
  await createTestSheet(db, user.id, { name: "phone", csv: "a\n1\n" });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("/sheets");
  await page.getByText("Replace data…").click();
  await expect(page.getByRole("button", { name: "Replace data" })).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: "test-results/sheets-replace-phone.png", fullPage: true });
});
