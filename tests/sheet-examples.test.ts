import { beforeAll, describe, expect, it } from "vitest";
import { buildSheetExamples } from "~/components/sheets/sheet-examples-data";
import { importSheet } from "~/models/csv-import.server";
import { parseSheetBytes, replaceSheetData } from "~/models/sheet-data.server";
import { firstRowOfEachSheet } from "~/models/sheets.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { curlCommand } from "~/utils/endpoints";
import { createTestUser } from "./factories";

const endpoint = "https://sheetmeter.example/api/v1/sheets/cm3abc";

describe("curlCommand", () => {
  it("quotes the key for the shell to expand and the URL for it to leave alone", () => {
    expect(curlCommand(`${endpoint}?a=1&b=2`, "$SHEETMETER_KEY")).toBe(
      `curl -H "Authorization: Bearer $SHEETMETER_KEY" '${endpoint}?a=1&b=2'`,
    );
  });

  it("percent-encodes a single quote so it cannot end the quoted URL", () => {
    expect(curlCommand(`${endpoint}?name=O'Brien`, "k")).toBe(
      `curl -H "Authorization: Bearer k" '${endpoint}?name=O%27Brien'`,
    );
  });
});

describe("buildSheetExamples", () => {
  const columns = ["country", "capital", "population"];
  const firstRow = { country: "France", capital: "Paris", population: 68170000 };

  it("filters on the first row's text value and sorts by its numeric column, highest first", () => {
    const examples = buildSheetExamples({ endpoint, columns, firstRow, rowCount: 3 });
    expect(examples.map((example) => example.url)).toEqual([
      `${endpoint}?limit=1`,
      `${endpoint}?country=France&sort=population&order=desc`,
      `${endpoint}?fields=country,capital&limit=1`,
    ]);
  });

  it("answers the one-row examples with exactly what the API returns", () => {
    const [first, , fields] = buildSheetExamples({ endpoint, columns, firstRow, rowCount: 3 });
    expect(JSON.parse(first.response!)).toEqual({ data: [firstRow], meta: { total: 3, limit: 1, offset: 0 } });
    expect(JSON.parse(fields.response!)).toEqual({
      data: [{ country: "France", capital: "Paris" }],
      meta: { total: 3, limit: 1, offset: 0 },
    });
    // Key order matters to a reader: the fields come back in the order asked for.
    expect(Object.keys(JSON.parse(fields.response!).data[0])).toEqual(["country", "capital"]);
  });

  it("encodes names and values, skips reserved and empty columns, and pages long sheets", () => {
    const examples = buildSheetExamples({
      endpoint,
      columns: ["sort", "notes", "First name", "age"],
      firstRow: { sort: "x", notes: null, "First name": "Zoë & Ann", age: 41 },
      rowCount: 25,
    });
    expect(examples.map((example) => example.url)).toEqual([
      `${endpoint}?limit=1`,
      `${endpoint}?First%20name=Zo%C3%AB%20%26%20Ann&sort=age&order=desc`,
      `${endpoint}?fields=sort,notes&limit=1`,
      `${endpoint}?limit=10&offset=10`,
    ]);
  });

  it("has no filter example for a sheet without rows, and no fields example for a single column", () => {
    const examples = buildSheetExamples({ endpoint, columns: ["only"], firstRow: null, rowCount: 0 });
    expect(examples).toHaveLength(1);
    expect(JSON.parse(examples[0].response!)).toEqual({ data: [], meta: { total: 0, limit: 1, offset: 0 } });
  });
});

describe("firstRowOfEachSheet", () => {
  const db = getDb();
  let userId: string;
  beforeAll(async () => {
    ({ id: userId } = await createTestUser(db));
  });

  it("reads each sheet's first row in file order and column order, in one query", async () => {
    const encode = (text: string) => new TextEncoder().encode(text);
    const a = await importSheet(db, { userId, name: "a", bytes: encode("z,a\n1,x\n2,y\n") });
    const b = await importSheet(db, { userId, name: "b", bytes: encode("name\nonly\n") });
    const empty = await importSheet(db, { userId, name: "empty", bytes: encode("name\n") });
    const rows = await firstRowOfEachSheet(db, [
      { id: a.sheetId, columns: a.columns, version: 1 },
      { id: b.sheetId, columns: b.columns, version: 1 },
      { id: empty.sheetId, columns: empty.columns, version: 1 },
    ]);
    expect(rows.get(a.sheetId)).toEqual({ z: 1, a: "x" });
    expect(Object.keys(rows.get(a.sheetId)!)).toEqual(["z", "a"]);
    expect(rows.get(b.sheetId)).toEqual({ name: "only" });
    expect(rows.has(empty.sheetId)).toBe(false);
    expect((await firstRowOfEachSheet(db, [])).size).toBe(0);
  });

  it("reads the first row of the version it is given, after the data was replaced", async () => {
    const encode = (text: string) => new TextEncoder().encode(text);
    const sheet = await importSheet(db, { userId, name: "replaced", bytes: encode("city\nParis\n") });
    const replaced = await replaceSheetData(
      { redis: getRedis(), db },
      { sheetId: sheet.sheetId, userId, parsed: await parseSheetBytes(encode("town,pop\nOslo,7\n"), "csv") },
    );
    const rows = await firstRowOfEachSheet(db, [
      { id: sheet.sheetId, columns: replaced!.columns, version: replaced!.version },
    ]);
    expect(rows.get(sheet.sheetId)).toEqual({ town: "Oslo", pop: 7 });
  });
});
