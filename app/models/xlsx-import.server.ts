import { zipSync, type Zippable } from "fflate";
import { InvalidInputError, InvalidSpreadsheetError, readSheet, SheetNotFoundError } from "read-excel-file/node";
import yauzl from "yauzl";
import type { CellValue, SheetRowData } from "~/utils/sheet-cells";
import { checkHeader, MAX_CSV_ROWS, type ParsedSheet, SheetImportError, typeCell } from "./csv-import.server";

/**
 * XLSX → the same typed table as a CSV (csv-import.server.ts), through `read-excel-file` (maintained, no known
 * advisories, reads cached formula results and date styles). An XLSX file is a zip archive of XML, so a 10 MB
 * upload can unpack to gigabytes (a "zip bomb"), and the zip reader `read-excel-file` uses trusts the sizes each
 * entry declares. So the archive is first unpacked here with `yauzl`, which checks every entry's real size against
 * the central directory while inflating, only the XML parts are kept, and their total is bounded; what
 * `read-excel-file` then reads is an uncompressed archive rebuilt from exactly those parts.
 */

// The XML of a 100 000-row sheet is about ten times the size of the same data as CSV; this leaves room for that
// while bounding what one upload can make the process hold.
export const MAX_XLSX_UNPACKED_BYTES = 128 * 1024 * 1024;
// A workbook has a handful of parts per sheet; thousands mean something else.
const MAX_XLSX_ENTRIES = 2_000;

function wantedPart(name: string): boolean {
  // What read-excel-file reads: the workbook, sheets, shared strings, styles and their relationships.
  return name.endsWith(".xml") || name.endsWith(".xml.rels");
}

const notXlsx = () =>
  new SheetImportError(
    "The file is not a valid XLSX workbook. Open it in Excel (or another spreadsheet) and save it as .xlsx again.",
  );

function openZip(bytes: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true, validateEntrySizes: true }, (error, zip) => {
      if (error) reject(notXlsx());
      else resolve(zip);
    });
  });
}

function readEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, budget: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error) {
        reject(notXlsx());
        return;
      }
      const chunks: Buffer[] = [];
      let length = 0;
      stream.on("data", (chunk: Buffer) => {
        length += chunk.byteLength;
        if (length > budget) {
          stream.destroy();
          reject(unpacksTooLarge());
          return;
        }
        chunks.push(chunk);
      });
      // yauzl fails the stream when the inflated size differs from the declared one.
      stream.on("error", () => reject(notXlsx()));
      stream.on("end", () => resolve(Buffer.concat(chunks, length)));
    });
  });
}

const unpacksTooLarge = () =>
  new SheetImportError(
    `The workbook unpacks to more than ${MAX_XLSX_UNPACKED_BYTES / 1024 / 1024} MB of data; split it or save it as CSV.`,
    413,
  );

/** The workbook's XML parts, inflated with every size checked, as an uncompressed zip for read-excel-file. */
async function boundedWorkbook(bytes: Uint8Array): Promise<Buffer> {
  const zip = await openZip(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (zip.entryCount > MAX_XLSX_ENTRIES) {
    zip.close();
    throw notXlsx();
  }
  const parts: Zippable = {};
  let unpacked = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on("error", () => reject(notXlsx()));
      zip.on("end", () => resolve());
      zip.on("entry", (entry: yauzl.Entry) => {
        if (!wantedPart(entry.fileName)) {
          zip.readEntry();
          return;
        }
        if (unpacked + entry.uncompressedSize > MAX_XLSX_UNPACKED_BYTES) {
          reject(unpacksTooLarge());
          return;
        }
        readEntry(zip, entry, MAX_XLSX_UNPACKED_BYTES - unpacked).then((data) => {
          unpacked += data.byteLength;
          parts[entry.fileName] = [data, { level: 0 }];
          zip.readEntry();
        }, reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  const rebuilt = zipSync(parts);
  return Buffer.from(rebuilt.buffer, rebuilt.byteOffset, rebuilt.byteLength);
}

/**
 * A cell as the API returns it, with the CSV's typing: text goes through the same rules as a CSV field (so "42"
 * typed as text is the number 42, "007" stays text), numbers and booleans stay, dates become ISO 8601 strings —
 * `YYYY-MM-DD` when the cell has no time of day, else the full UTC timestamp (Excel stores no time zone).
 */
export function xlsxCell(value: unknown): CellValue {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return typeCell(value);
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "boolean") return value;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return null;
    const iso = value.toISOString();
    return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : iso;
  }
  return String(value);
}

function headerText(value: unknown): string {
  const cell = xlsxCell(value);
  return cell === null ? "" : String(cell);
}

function describeReadError(error: unknown, worksheet: string | undefined): SheetImportError | null {
  if (error instanceof SheetNotFoundError) {
    return new SheetImportError(`The workbook has no worksheet named “${worksheet ?? ""}”. ${error.message}`);
  }
  if (error instanceof InvalidInputError) {
    if (error.code === "XLS_FILE_NOT_SUPPORTED") {
      return new SheetImportError(
        "This is an old Excel (.xls) file; open it in Excel and save it as .xlsx or CSV UTF-8.",
        415,
      );
    }
    return notXlsx();
  }
  if (error instanceof InvalidSpreadsheetError) {
    // The library names the cell ("<c/> at row 3, col 2: VALUE_MISSING"); say it in words.
    return new SheetImportError(`The workbook could not be read: ${error.message}. Save it again in Excel and retry.`);
  }
  return null;
}

/** Parses the first (or the named) worksheet of an XLSX file; throws SheetImportError with a message to act on. */
export async function parseXlsx(bytes: Uint8Array, options: { worksheet?: string } = {}): Promise<ParsedSheet> {
  // "PK\x03\x04": every zip starts with a local file header. The old binary .xls starts with D0 CF 11 E0.
  if (bytes[0] === 0xd0 && bytes[1] === 0xcf && bytes[2] === 0x11 && bytes[3] === 0xe0) {
    throw new SheetImportError(
      "This is an old Excel (.xls) file; open it in Excel and save it as .xlsx or CSV UTF-8.",
      415,
    );
  }
  if (bytes[0] !== 0x50 || bytes[1] !== 0x4b) throw notXlsx();
  const workbook = await boundedWorkbook(bytes);

  let data: unknown[][];
  try {
    // trim: false keeps text as typed, like a CSV field; typing trims only to decide a number or boolean.
    data = (await readSheet(workbook, options.worksheet ?? 1, { trim: false })) as unknown[][];
  } catch (error) {
    throw describeReadError(error, options.worksheet) ?? error;
  }

  // Rows with no value at all are skipped, as blank lines are in a CSV.
  const nonEmpty = data.filter((row) => row.some((cell) => cell !== null && cell !== undefined && cell !== ""));
  if (nonEmpty.length === 0) {
    throw new SheetImportError("The worksheet is empty. The first row must name the columns.");
  }
  const [headerRow, ...body] = nonEmpty;
  if (body.length > MAX_CSV_ROWS) {
    throw new SheetImportError(
      `The worksheet has more than ${MAX_CSV_ROWS.toLocaleString("en-US")} rows; split it.`,
      413,
    );
  }
  // A value in a column past the last named one is that column's missing name, as in a CSV: the header is as wide
  // as the widest row, so the empty cells in it get the same "Column N has no name" as a CSV's.
  const width = nonEmpty.reduce((max, row) => Math.max(max, row.length), 0);
  const header = Array.from({ length: width }, (_, i) => headerText(headerRow[i]));
  const columns = checkHeader(header);
  const rows = body.map((record) => {
    const row: SheetRowData = {};
    columns.forEach((column, i) => {
      row[column] = xlsxCell(record[i]);
    });
    return row;
  });
  return { columns, rows };
}
