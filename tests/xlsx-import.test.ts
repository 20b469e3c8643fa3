import { strFromU8, strToU8, unzipSync, zipSync } from "fflate";
import writeXlsxFile, { type SheetData } from "write-excel-file/node";
import { describe, expect, it } from "vitest";
import { MAX_CSV_ROWS, SheetImportError } from "~/models/csv-import.server";
import { parseSheetBytes } from "~/models/sheet-data.server";
import { MAX_XLSX_UNPACKED_BYTES, parseXlsx, xlsxCell } from "~/models/xlsx-import.server";

/**
 * XLSX import through real workbooks written by `write-excel-file` (the writer of the reader we use). The writer
 * stores formulas without a result, as formulas are only computed by a spreadsheet program; `withCachedResults`
 * adds the results the way Excel does when it saves, so the file looks like one a customer uploads.
 */

async function workbook(data: SheetData | { sheet: string; data: SheetData }[]): Promise<Uint8Array> {
  const buffer =
    Array.isArray(data[0]) || data.length === 0
      ? await writeXlsxFile(data as SheetData).toBuffer()
      : await writeXlsxFile(
          (data as { sheet: string; data: SheetData }[]).map((s) => ({ data: s.data, sheet: s.sheet })),
        ).toBuffer();
  return new Uint8Array(buffer);
}

/** Gives sheet1.xml's formula cells, in order, the cached results Excel would have saved with them. */
function withCachedResults(bytes: Uint8Array, results: { type?: string; value: string }[]): Uint8Array {
  const files = unzipSync(bytes);
  let next = 0;
  const xml = strFromU8(files["xl/worksheets/sheet1.xml"]).replace(
    /<c r="([A-Z]+\d+)"( s="\d+")?><f>(.*?)<\/f><\/c>/g,
    (_, ref: string, style: string | undefined, text: string) => {
      const result = results[next++];
      const type = result.type ? ` t="${result.type}"` : "";
      return `<c r="${ref}"${style ?? ""}${type}><f>${text}</f><v>${result.value}</v></c>`;
    },
  );
  expect(next).toBe(results.length);
  files["xl/worksheets/sheet1.xml"] = strToU8(xml);
  return zipSync(files);
}

const formula = (value: string) => ({ value, type: "Formula" as const });
const date = (value: Date, format = "yyyy-mm-dd") => ({ value, type: Date, format });

describe("parseXlsx", () => {
  it("imports numbers, dates, formulas' cached values, booleans and empty cells with the CSV's typing", async () => {
    const bytes = withCachedResults(
      await workbook([
        ["name", "born", "score", "double", "label", "ok", "code", "note"],
        ["Ada", date(new Date(Date.UTC(1815, 11, 10))), 1.5, formula("C2*2"), formula('A2&"!"'), true, "007", "42"],
        [
          "Bob",
          date(new Date(Date.UTC(2020, 0, 2, 13, 45)), "yyyy-mm-dd hh:mm"),
          2,
          formula("C3*2"),
          null,
          false,
          null,
          "TRUE",
        ],
        [null, null, null, null, null, null, null, null],
        ["Cy", null, -3, formula("1/0"), " spaced ", null, "x", null],
      ]),
      [{ value: "3" }, { type: "str", value: "Ada!" }, { value: "4" }, { type: "e", value: "#DIV/0!" }],
    );
    const parsed = await parseXlsx(bytes);
    expect(parsed.columns).toEqual(["name", "born", "score", "double", "label", "ok", "code", "note"]);
    expect(parsed.rows).toEqual([
      { name: "Ada", born: "1815-12-10", score: 1.5, double: 3, label: "Ada!", ok: true, code: "007", note: 42 },
      {
        name: "Bob",
        born: "2020-01-02T13:45:00.000Z",
        score: 2,
        double: 4,
        label: null,
        ok: false,
        code: null,
        note: true,
      },
      // The empty row is skipped, as a blank line in a CSV is; text keeps its spaces, as a CSV field does; a
      // formula's error (#DIV/0!) is an empty cell, not text that looks like data.
      { name: "Cy", born: null, score: -3, double: null, label: " spaced ", ok: null, code: "x", note: null },
    ]);
  });

  it("reads the named worksheet, the first by default, and names the sheets when the name is wrong", async () => {
    const bytes = await workbook([
      { sheet: "Summary", data: [["total"], [3]] },
      {
        sheet: "Orders",
        data: [
          ["id", "item"],
          [1, "tea"],
        ],
      },
    ]);
    expect(await parseXlsx(bytes)).toEqual({ columns: ["total"], rows: [{ total: 3 }] });
    expect(await parseSheetBytes(bytes, "xlsx", { worksheet: "Orders" })).toEqual({
      columns: ["id", "item"],
      rows: [{ id: 1, item: "tea" }],
    });
    const refused = parseXlsx(bytes, { worksheet: "Nope" });
    await expect(refused).rejects.toThrow(SheetImportError);
    await expect(refused).rejects.toThrow(/no worksheet named “Nope”/);
  });

  it("refuses empty, repeated and merged header cells with the CSV's messages", async () => {
    await expect(
      parseXlsx(
        await workbook([
          ["a", null, "c"],
          [1, 2, 3],
        ]),
      ),
    ).rejects.toThrow("Column 2 has no name. Give every column a name in the first row.");
    await expect(
      parseXlsx(
        await workbook([
          ["a", "a"],
          [1, 2],
        ]),
      ),
    ).rejects.toThrow("The column name “a” appears twice (columns 1 and 2). Column names must be unique.");
    // A value under no header is a column without a name, like a CSV row with an extra field.
    await expect(parseXlsx(await workbook([["a"], [1, 2]]))).rejects.toThrow("Column 2 has no name.");
    // A header merged across two columns keeps its text in the first cell only.
    const merged = await workbook([
      [{ value: "Name", columnSpan: 2 }, null, "city"],
      ["Ada", "Lovelace", "London"],
    ]);
    await expect(parseXlsx(merged)).rejects.toThrow("Column 2 has no name.");
    await expect(parseXlsx(await workbook([[null], [null]]))).rejects.toThrow(/worksheet is empty/);
  });

  it("refuses files that are not XLSX workbooks, naming the old .xls format", async () => {
    const xls = new Uint8Array([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0, 0, 0, 0]);
    await expect(parseXlsx(xls)).rejects.toMatchObject({ status: 415, message: expect.stringMatching(/\.xls/) });
    await expect(parseXlsx(strToU8("name,city\nAda,London\n"))).rejects.toMatchObject({ status: 400 });
    // A zip, but not a workbook.
    await expect(parseXlsx(zipSync({ "hello.txt": strToU8("hi") }))).rejects.toMatchObject({ status: 400 });
    // A truncated workbook.
    const whole = await workbook([["a"], [1]]);
    await expect(parseXlsx(whole.subarray(0, whole.byteLength - 40))).rejects.toMatchObject({ status: 400 });
  });

  it("refuses a workbook that unpacks past the bound without inflating all of it (413)", async () => {
    // A few hundred kilobytes that inflate past the bound: a "zip bomb".
    const filler = new Uint8Array(MAX_XLSX_UNPACKED_BYTES + 1024).fill(0x20);
    const bomb = zipSync({ "xl/worksheets/sheet1.xml": [filler, { level: 9 }] });
    expect(bomb.byteLength).toBeLessThan(1024 * 1024);
    await expect(parseXlsx(bomb)).rejects.toMatchObject({ status: 413, message: expect.stringMatching(/unpacks/) });
  });

  it("refuses more rows than a CSV may have (413) and more than 500 columns (413)", async () => {
    const tooMany = await workbook([["n"], ...Array.from({ length: MAX_CSV_ROWS + 1 }, (_, i) => [i])]);
    await expect(parseXlsx(tooMany)).rejects.toMatchObject({ status: 413 });
    const wide = await workbook([Array.from({ length: 501 }, (_, i) => `c${i}`)]);
    await expect(parseXlsx(wide)).rejects.toMatchObject({ status: 413 });
  }, 60_000);
});

describe("xlsxCell", () => {
  it("types text like a CSV field and writes dates as ISO 8601", () => {
    expect(xlsxCell("12")).toBe(12);
    expect(xlsxCell("007")).toBe("007");
    expect(xlsxCell("")).toBeNull();
    expect(xlsxCell(new Date(Date.UTC(2026, 2, 1)))).toBe("2026-03-01");
    expect(xlsxCell(new Date(Date.UTC(2026, 2, 1, 0, 0, 1)))).toBe("2026-03-01T00:00:01.000Z");
    expect(xlsxCell(Number.NaN)).toBeNull();
  });
});
