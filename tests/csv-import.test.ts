import { beforeAll, describe, expect, it } from "vitest";
import {
  CsvImportError,
  importSheet,
  MAX_CSV_BYTES,
  MAX_CSV_ROWS,
  parseCsv,
  typeCell,
} from "~/models/csv-import.server";
import { getDb } from "~/utils/db.server";
import { createTestUser } from "./factories";

const db = getDb();
const utf8 = (text: string) => new TextEncoder().encode(text);

let userId: string;
beforeAll(async () => {
  ({ id: userId } = await createTestUser(db));
});

function refusal(bytes: Uint8Array): CsvImportError {
  try {
    parseCsv(bytes);
  } catch (error) {
    if (error instanceof CsvImportError) return error;
    throw error;
  }
  throw new Error("expected the file to be refused");
}

async function sheetCount() {
  return db.sheet.count({ where: { userId } });
}

describe("typing cells", () => {
  it.each([
    ["42", 42],
    ["-3.5", -3.5],
    ["1e3", 1000],
    [" 7 ", 7],
    ["0", 0],
    ["true", true],
    ["FALSE", false],
    ["", null],
    ["   ", null],
    ["007", "007"],
    ["+1", "+1"],
    ["1,5", "1,5"],
    ["12345678901234567890", "12345678901234567890"],
    ["NaN", "NaN"],
    ["Infinity", "Infinity"],
    ["yes", "yes"],
  ])("%j → %j", (raw, typed) => {
    expect(typeCell(raw)).toEqual(typed);
  });
});

describe("parseCsv", () => {
  it("drops a UTF-8 BOM so the first column keeps its name", () => {
    const parsed = parseCsv(new Uint8Array([0xef, 0xbb, 0xbf, ...utf8("id,name\n1,Zoë\n")]));
    expect(parsed.columns).toEqual(["id", "name"]);
    expect(parsed.rows).toEqual([{ id: 1, name: "Zoë" }]);
  });

  it("detects semicolons, keeping decimal commas inside values", () => {
    const parsed = parseCsv(utf8("name;price\r\nTea;3,50\r\nCake;4\r\n"));
    expect(parsed.delimiter).toBe(";");
    expect(parsed.rows).toEqual([
      { name: "Tea", price: "3,50" },
      { name: "Cake", price: 4 },
    ]);
  });

  it("keeps commas, quotes and newlines inside quoted fields", () => {
    const parsed = parseCsv(utf8('name,note\n"Smith, Jo","said ""hi""\nthen left"\n'));
    expect(parsed.rows).toEqual([{ name: "Smith, Jo", note: 'said "hi"\nthen left' }]);
  });

  it("types empty cells as null, trims column names, skips blank lines", () => {
    const parsed = parseCsv(utf8(" a , b ,c\n1,,\n\n,x,true\n"));
    expect(parsed.columns).toEqual(["a", "b", "c"]);
    expect(parsed.rows).toEqual([
      { a: 1, b: null, c: null },
      { a: null, b: "x", c: true },
    ]);
  });

  it("accepts a header-only file as an empty sheet", () => {
    expect(parseCsv(utf8("a,b\n"))).toMatchObject({ columns: ["a", "b"], rows: [] });
  });

  it.each([
    ["id,name,id\n1,2,3\n", /“id” appears twice \(columns 1 and 3\)/],
    ["id, name ,name\n1,2,3\n", /“name” appears twice/],
    ["id,,name\n1,2,3\n", /Column 2 has no name/],
    ["", /empty/],
    ["a,b\n1,2\n3\n", /line 3 has a different number of fields/],
    ['a,b\n"1,2\n', /never closed/],
  ])("refuses %j with a clear message", (text, message) => {
    const error = refusal(utf8(text));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(message);
  });

  it("refuses bytes that are not UTF-8 (a Windows-1252 export)", () => {
    // "café" in Windows-1252: é is the single byte 0xE9.
    const error = refusal(new Uint8Array([...utf8("name\ncaf"), 0xe9, 0x0a]));
    expect(error.status).toBe(400);
    expect(error.message).toMatch(/not valid UTF-8/);
  });

  it("refuses a file over 10 MB with 413", () => {
    const error = refusal(new Uint8Array(MAX_CSV_BYTES + 1).fill(0x61));
    expect(error.status).toBe(413);
    expect(error.message).toMatch(/limit is 10 MB/);
  });

  it("accepts exactly 100 000 rows and refuses one more with 413", () => {
    const rows = (count: number) => `n\n${"1\n".repeat(count)}`;
    expect(parseCsv(utf8(rows(MAX_CSV_ROWS))).rows).toHaveLength(MAX_CSV_ROWS);
    const error = refusal(utf8(rows(MAX_CSV_ROWS + 1)));
    expect(error.status).toBe(413);
    expect(error.message).toMatch(/more than 100,000 rows/);
  });
});

describe("importSheet", () => {
  it("stores the sheet and its typed rows in file order", async () => {
    const { sheetId, rows, columns } = await importSheet(db, {
      userId,
      name: "cities",
      bytes: utf8("city,pop\nParis,2100000\nLyon,\n"),
    });
    expect(rows).toBe(2);
    expect(columns).toEqual(["city", "pop"]);
    const sheet = await db.sheet.findUniqueOrThrow({
      where: { id: sheetId },
      include: { rows: { orderBy: { index: "asc" } } },
    });
    expect(sheet).toMatchObject({ name: "cities", columns: ["city", "pop"], rowCount: 2 });
    expect(sheet.rows.map((row) => [row.index, row.data])).toEqual([
      [0, { city: "Paris", pop: 2100000 }],
      [1, { city: "Lyon", pop: null }],
    ]);
  });

  it("imports 100 000 rows in batches, in order", async () => {
    const body = Array.from({ length: MAX_CSV_ROWS }, (_, i) => `${i},row ${i}`).join("\n");
    const started = performance.now();
    const { sheetId, rows } = await importSheet(db, { userId, name: "big", bytes: utf8(`n,label\n${body}\n`) });
    const elapsed = performance.now() - started;
    expect(rows).toBe(MAX_CSV_ROWS);
    expect(await db.sheetRow.count({ where: { sheetId } })).toBe(MAX_CSV_ROWS);
    const last = await db.sheetRow.findUniqueOrThrow({
      where: { sheetId_version_index: { sheetId, version: 1, index: MAX_CSV_ROWS - 1 } },
    });
    expect(last.data).toEqual({ n: MAX_CSV_ROWS - 1, label: `row ${MAX_CSV_ROWS - 1}` });
    // Row-by-row inserts would take minutes; batches take seconds even on a busy machine.
    expect(elapsed).toBeLessThan(60_000);
  });

  it("leaves nothing behind when a file is refused", async () => {
    const before = await sheetCount();
    await expect(importSheet(db, { userId, name: "bad", bytes: utf8("a,a\n1,2\n") })).rejects.toThrow(CsvImportError);
    await expect(
      importSheet(db, { userId, name: "bad", bytes: new Uint8Array([0x61, 0x0a, 0xff, 0x0a]) }),
    ).rejects.toThrow(CsvImportError);
    expect(await sheetCount()).toBe(before);
  });

  it("rolls back the sheet and earlier batches when a later batch fails", async () => {
    const before = await sheetCount();
    // The second batch insert fails, as a dropped connection or a full disk would make it.
    type Tx = Parameters<Parameters<typeof db.$transaction>[0]>[0];
    const failingDb = new Proxy(db, {
      get(target, property) {
        if (property !== "$transaction") return Reflect.get(target, property);
        return (work: (tx: Tx) => Promise<unknown>, options: object) =>
          target.$transaction((tx) => {
            let batches = 0;
            const failingTx = new Proxy(tx, {
              get(inner, name) {
                if (name !== "$executeRaw") return Reflect.get(inner, name);
                return (...args: Parameters<Tx["$executeRaw"]>) =>
                  ++batches === 2 ? Promise.reject(new Error("disk full")) : inner.$executeRaw(...args);
              },
            });
            return work(failingTx);
          }, options);
      },
    });
    const body = Array.from({ length: 12_000 }, (_, i) => `${i}`).join("\n");
    await expect(importSheet(failingDb, { userId, name: "half", bytes: utf8(`n\n${body}\n`) })).rejects.toThrow(
      /disk full/,
    );
    expect(await sheetCount()).toBe(before);
    expect(await db.sheet.count({ where: { name: "half" } })).toBe(0);
  });
});
