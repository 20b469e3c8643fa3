import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import writeXlsxFile from "write-excel-file/node";
import { describe, expect, it } from "vitest";
import { getDb } from "~/utils/db.server";
import { createTestUser } from "./factories";
import { CLI_TEST_TIMEOUT_MS, runAdmin } from "./helpers/cli";

describe("admin CLI: sheet:import of an XLSX file and sheet:replace", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("imports a chosen worksheet, then replaces the sheet's data in place, answering in JSON", async () => {
    const db = getDb();
    const user = await createTestUser(db);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sm-cli-"));
    const xlsx = path.join(dir, "stock.xlsx");
    const workbook = await writeXlsxFile([
      { sheet: "Notes", data: [["note"], ["ignore me"]] },
      {
        sheet: "Stock",
        data: [
          ["item", "count"],
          ["Tea", 3],
          ["Cake", 4],
        ],
      },
    ]).toBuffer();
    fs.writeFileSync(xlsx, workbook);

    const imported = await runAdmin(["sheet:import", "--user", user.id, "--file", xlsx, "--worksheet", "Stock"]);
    expect(imported.status).toBe(0);
    expect(imported.json).toEqual({ sheetId: expect.any(String), rows: 2 });
    const sheetId = String(imported.json?.sheetId);
    expect(await db.sheet.findUniqueOrThrow({ where: { id: sheetId } })).toMatchObject({
      name: "stock",
      columns: ["item", "count"],
      version: 1,
    });

    const csv = path.join(dir, "stock-new.csv");
    fs.writeFileSync(csv, "item,count,shelf\nTea,5,A\n");
    const replaced = await runAdmin(["sheet:replace", "--sheet", sheetId, "--file", csv]);
    expect(replaced.status).toBe(0);
    expect(replaced.json).toEqual({
      sheetId,
      rows: 1,
      columns: ["item", "count", "shelf"],
      version: 2,
      dataUpdatedAt: expect.any(String),
    });
    const rows = await db.sheetRow.findMany({ where: { sheetId, version: 2 } });
    expect(rows.map((row) => row.data)).toEqual([{ item: "Tea", count: 5, shelf: "A" }]);

    const missing = await runAdmin(["sheet:replace", "--sheet", "no-such-sheet", "--file", csv]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/No sheet with id no-such-sheet/);
    const wrongSheet = await runAdmin(["sheet:replace", "--sheet", sheetId, "--file", xlsx, "--worksheet", "Nope"]);
    expect(wrongSheet.status).toBe(1);
    expect(wrongSheet.stderr).toMatch(/no worksheet named “Nope”/);
  });
});
