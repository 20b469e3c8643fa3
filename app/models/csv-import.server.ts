import { CsvError, parse } from "csv-parse/sync";
import { Prisma } from "~/generated/prisma/client";
import type { Db } from "~/utils/db.server";
import type { CellValue, SheetRowData } from "~/utils/sheet-cells";

/**
 * CSV → typed rows → one Sheet with its SheetRows, in one transaction. Limits exist so one upload cannot hold a
 * request (or the database) for long: 10 MB and 100 000 rows; past them the answer is 413.
 */
export const MAX_CSV_BYTES = 10 * 1024 * 1024;
export const MAX_CSV_ROWS = 100_000;
export const MAX_CSV_COLUMNS = 500;
export const MAX_SHEET_NAME_LENGTH = 100;
// Rows go to Postgres as one JSON array parameter per batch; 5 000 rows of a 10 MB file stay well under 1 MB.
const INSERT_BATCH_ROWS = 5_000;

/**
 * A parsed, validated table as every source produces it (a CSV or XLSX upload, a fetched URL): unique non-empty
 * column names in file order, and one typed row per data line, each with exactly those keys.
 */
export interface ParsedSheet {
  columns: string[];
  rows: SheetRowData[];
}

export interface ParsedCsv extends ParsedSheet {
  delimiter: "," | ";";
}

/**
 * A file we refuse, with the HTTP status that says why (400 malformed, 413 too large, 415 not a format we read) and
 * a message for people. Any source (CSV, XLSX, a URL) throws it, so routes and the CLI handle one error type.
 */
export class SheetImportError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 413 | 415 = 400,
  ) {
    super(message);
    this.name = "SheetImportError";
  }
}

/** The name the CSV importer first gave the error; the same class. */
export const CsvImportError = SheetImportError;
export type CsvImportError = SheetImportError;

// Numbers in the form people and spreadsheets write them. Leading zeros ("007", zip codes) and "+1" stay strings,
// as do integers too long for a double to hold exactly (IDs, card numbers): turning those into numbers loses data.
const NUMBER_PATTERN = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** The typed value of one cell: numbers, true/false (any case, as Excel writes TRUE), empty → null, else text. */
export function typeCell(raw: string): CellValue {
  const trimmed = raw.trim();
  if (trimmed === "") return null;
  if (NUMBER_PATTERN.test(trimmed)) {
    const value = Number(trimmed);
    const isLongInteger = /^-?\d+$/.test(trimmed) && !Number.isSafeInteger(value);
    if (Number.isFinite(value) && !isLongInteger) return value;
    return raw;
  }
  const lower = trimmed.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  return raw;
}

/**
 * Comma or semicolon, whichever appears more often outside quotes on the header line. Spreadsheets in locales
 * with a decimal comma export with semicolons, so a comma inside a semicolon file must not split fields.
 */
export function detectDelimiter(text: string): "," | ";" {
  let commas = 0;
  let semicolons = 0;
  let quoted = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    else if (!quoted && (char === "\n" || char === "\r")) break;
    else if (!quoted && char === ",") commas++;
    else if (!quoted && char === ";") semicolons++;
  }
  return semicolons > commas ? ";" : ",";
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    // fatal: a Latin-1 or Windows-1252 file must be refused, not imported with replacement characters in it.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new SheetImportError(
      "The file is not valid UTF-8 text. Save it as “CSV UTF-8” (in Excel: Save As → CSV UTF-8) and upload it again.",
    );
  }
}

/**
 * The column names of a header row, trimmed; refuses too many, empty and repeated names with a message saying
 * which column. Shared by every format, so a spreadsheet's empty or merged header cell reads like a CSV's.
 */
export function checkHeader(header: readonly string[]): string[] {
  const columns = header.map((name) => name.trim());
  if (columns.length > MAX_CSV_COLUMNS) {
    throw new SheetImportError(
      `The file has ${columns.length} columns; a sheet can have at most ${MAX_CSV_COLUMNS}.`,
      413,
    );
  }
  const seen = new Map<string, number>();
  columns.forEach((name, i) => {
    if (name === "") {
      throw new SheetImportError(`Column ${i + 1} has no name. Give every column a name in the first row.`);
    }
    const first = seen.get(name);
    if (first !== undefined) {
      throw new SheetImportError(
        `The column name “${name}” appears twice (columns ${first + 1} and ${i + 1}). Column names must be unique.`,
      );
    }
    seen.set(name, i);
  });
  return columns;
}

/** Parses and types a CSV file; throws SheetImportError with a message a person can act on. */
export function parseCsv(bytes: Uint8Array): ParsedCsv {
  if (bytes.byteLength > MAX_CSV_BYTES) {
    throw new SheetImportError(`The file is ${formatMegabytes(bytes.byteLength)}; the limit is 10 MB.`, 413);
  }
  // TextDecoder drops a leading UTF-8 BOM, so the first column name never starts with U+FEFF.
  const text = decodeUtf8(bytes);
  if (text.trim() === "") throw new SheetImportError("The file is empty. The first row must name the columns.");
  const delimiter = detectDelimiter(text);

  let records: string[][];
  try {
    records = parse(text, {
      delimiter,
      bom: true,
      skip_empty_lines: true,
      // One more than allowed, so "too many rows" is told apart from "exactly the limit" without parsing it all.
      to: MAX_CSV_ROWS + 2,
    });
  } catch (error) {
    if (error instanceof CsvError) throw new SheetImportError(describeCsvError(error));
    throw error;
  }

  const [header, ...body] = records;
  const columns = checkHeader(header);
  if (body.length > MAX_CSV_ROWS) {
    throw new SheetImportError(`The file has more than ${MAX_CSV_ROWS.toLocaleString("en-US")} rows; split it.`, 413);
  }
  const rows = body.map((record) => {
    const row: SheetRowData = {};
    columns.forEach((column, i) => {
      row[column] = typeCell(record[i]);
    });
    return row;
  });
  return { columns, rows, delimiter };
}

function describeCsvError(error: CsvError): string {
  const line = (error as CsvError & { lines?: number }).lines;
  const where = line ? ` on line ${line}` : "";
  switch (error.code) {
    case "CSV_RECORD_INCONSISTENT_FIELDS_LENGTH":
      return `A row${where} has a different number of fields than the header row. Check for a missing or extra separator.`;
    case "CSV_QUOTE_NOT_CLOSED":
      return `A quoted field${where} is never closed. Check for a missing closing quote (").`;
    case "CSV_INVALID_CLOSING_QUOTE":
    case "CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE":
      return `A quote${where} is followed by other characters. Inside a quoted field write a quote as "".`;
    default:
      return `The file is not valid CSV${where}: ${error.message}`;
  }
}

export function formatMegabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function sheetNameFrom(fileName: string | undefined, given?: string): string {
  const name = (given?.trim() || fileName?.replace(/\.(csv|txt|xlsx)$/i, "").trim() || "Untitled sheet").slice(
    0,
    MAX_SHEET_NAME_LENGTH,
  );
  return name;
}

/**
 * Writes `rows` as version `version` of the sheet, in batches of one JSON array each, expanded by Postgres, rather
 * than one statement per row. Runs inside the caller's transaction.
 */
export async function insertSheetRows(
  tx: Prisma.TransactionClient,
  sheetId: string,
  version: number,
  rows: readonly SheetRowData[],
): Promise<void> {
  for (let start = 0; start < rows.length; start += INSERT_BATCH_ROWS) {
    const batch = JSON.stringify(rows.slice(start, start + INSERT_BATCH_ROWS));
    await tx.$executeRaw(Prisma.sql`
      INSERT INTO "SheetRow" ("sheetId", "version", "index", "data")
      SELECT ${sheetId}, ${version}::int, ${start}::int + (ord - 1)::int, value
      FROM jsonb_array_elements(${batch}::jsonb) WITH ORDINALITY AS t(value, ord)`);
  }
}

// The default 5 s is too short for 100 000 rows on a busy machine.
export const BULK_TRANSACTION_OPTIONS = { timeout: 120_000, maxWait: 10_000 } as const;

/** Creates a sheet from an already parsed table, rows and all, in one transaction (no half-imported sheet). */
export async function createSheet(
  db: Db,
  input: { userId: string; name: string; parsed: ParsedSheet },
): Promise<{ sheetId: string; rows: number; columns: string[] }> {
  const { parsed } = input;
  const sheetId = await db.$transaction(async (tx) => {
    const sheet = await tx.sheet.create({
      data: { userId: input.userId, name: input.name, columns: parsed.columns, rowCount: parsed.rows.length },
      select: { id: true, version: true },
    });
    await insertSheetRows(tx, sheet.id, sheet.version, parsed.rows);
    return sheet.id;
  }, BULK_TRANSACTION_OPTIONS);
  return { sheetId, rows: parsed.rows.length, columns: parsed.columns };
}

/** Parses a CSV file and creates the sheet from it (see `createSheet`); a refused file rejects, never throws. */
export async function importSheet(
  db: Db,
  input: { userId: string; name: string; bytes: Uint8Array },
): Promise<{ sheetId: string; rows: number; columns: string[] }> {
  return createSheet(db, { userId: input.userId, name: input.name, parsed: parseCsv(input.bytes) });
}
