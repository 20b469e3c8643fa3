import type { Redis } from "@upstash/redis";
import type { Db } from "~/utils/db.server";
import {
  BULK_TRANSACTION_OPTIONS,
  formatMegabytes,
  insertSheetRows,
  MAX_CSV_BYTES,
  type ParsedSheet,
  parseCsv,
  SheetImportError,
} from "./csv-import.server";
import { bumpOwnerVersion } from "./owner-version.server";
import { parseXlsx } from "./xlsx-import.server";

/**
 * A sheet's data, whatever it came from: parsing a file of a known format into the one table shape, and swapping a
 * sheet's rows for a new table in place. Free of HTTP and of where the bytes came from (an upload, a file on disk,
 * a fetched URL), so the routes, the admin CLI and the URL refresh share it.
 */

export type SheetFormat = "csv" | "xlsx";

export const SHEET_FORMATS: readonly SheetFormat[] = ["csv", "xlsx"];

/** Every format has the same byte limit, checked before a byte is parsed. */
export const MAX_SHEET_FILE_BYTES = MAX_CSV_BYTES;

export interface ParseOptions {
  /** XLSX only: the worksheet's name; the first worksheet when absent. */
  worksheet?: string;
}

/**
 * The format of a file: by its name's extension (`.xlsx`; `.csv` and `.txt` are CSV), else by its first bytes (a
 * zip is an XLSX workbook, anything else is read as CSV). Content types are not trusted: browsers send
 * `application/vnd.ms-excel` for CSV files on Windows. The old binary `.xls` is refused with what to do instead.
 */
export function formatOfFile(fileName: string | undefined, bytes: Uint8Array): SheetFormat {
  const lower = (fileName ?? "").toLowerCase();
  if (lower.endsWith(".xlsx")) return "xlsx";
  if (lower.endsWith(".csv") || lower.endsWith(".txt")) return "csv";
  if (lower.endsWith(".xls") || (bytes[0] === 0xd0 && bytes[1] === 0xcf && bytes[2] === 0x11 && bytes[3] === 0xe0)) {
    throw new SheetImportError(
      "This is an old Excel (.xls) file; open it in Excel and save it as .xlsx or CSV UTF-8, then upload that.",
      415,
    );
  }
  return bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04 ? "xlsx" : "csv";
}

/** A worksheet name as typed in a form or a flag: trimmed, and absent when empty. */
export function worksheetOption(value: unknown): ParseOptions {
  const worksheet = typeof value === "string" ? value.trim() : "";
  return worksheet ? { worksheet } : {};
}

/** Parses a file by its name (or content) as CSV or XLSX; see `parseSheetBytes`. */
export function parseSheetFile(
  file: { name?: string; bytes: Uint8Array },
  options: ParseOptions = {},
): Promise<ParsedSheet> {
  return parseSheetBytes(file.bytes, formatOfFile(file.name, file.bytes), options);
}

/** Parses a whole file held in memory; throws SheetImportError (400/413) with a message a person can act on. */
export async function parseSheetBytes(
  bytes: Uint8Array,
  format: SheetFormat,
  options: ParseOptions = {},
): Promise<ParsedSheet> {
  if (bytes.byteLength > MAX_SHEET_FILE_BYTES) {
    throw new SheetImportError(`The file is ${formatMegabytes(bytes.byteLength)}; the limit is 10 MB.`, 413);
  }
  if (format === "xlsx") return parseXlsx(bytes, options);
  if (options.worksheet) throw new SheetImportError("A worksheet can only be chosen for an XLSX file.");
  const { columns, rows } = parseCsv(bytes);
  return { columns, rows };
}

/**
 * Reads a byte stream (a fetched body, a file stream) up to the size limit and parses it. Stops reading, and
 * refuses the file (413), as soon as it passes the limit, so an endless or oversized stream costs at most 10 MB.
 * Deadlines are the caller's: cancel the stream (or abort its source) to stop a slow one.
 */
export async function parseSheetStream(
  stream: AsyncIterable<Uint8Array>,
  format: SheetFormat,
  options: ParseOptions = {},
): Promise<ParsedSheet> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    length += chunk.byteLength;
    if (length > MAX_SHEET_FILE_BYTES) {
      throw new SheetImportError("The file is larger than 10 MB; split it.", 413);
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return parseSheetBytes(bytes, format, options);
}

export interface ReplacedSheet {
  sheetId: string;
  rows: number;
  columns: string[];
  /** The sheet's new `version` (in every API answer's `meta` and its ETag). */
  version: number;
  dataUpdatedAt: Date;
}

/**
 * Replaces a sheet's rows (and columns, which may change) with `parsed`, keeping its id, endpoint and keys; null
 * when `userId` has no such sheet. Atomic for readers: the new rows are written under the next version beside the
 * current ones, and the version moves in the same transaction, so a reader sees either the old version's rows or
 * the new one's, never a mix — also an API process that still holds the old version in memory reads the old rows
 * whole (they stay until the next replacement removes them). Concurrent replacements of one sheet queue on the
 * sheet's row lock.
 *
 * API processes hold the sheet (and its version) in memory behind the owner's cache version in Redis, which is
 * bumped once the new rows have committed, so every process serves the new version from its next call on
 * (docs/caching.md). Unlike a delete there is no bump before: until processes hear of the change they serve the
 * old version's rows, which are still whole and still there. If the bump fails (Redis unreachable), the
 * replacement stands and processes move to it when their cached sheet expires, within a minute.
 */
export async function replaceSheetData(
  deps: { redis: Redis; db: Db },
  input: { sheetId: string; userId: string; parsed: ParsedSheet },
): Promise<ReplacedSheet | null> {
  const { sheetId, userId, parsed } = input;
  const replaced = await deps.db.$transaction(async (tx) => {
    const [current] = await tx.$queryRaw<{ version: number }[]>`
      SELECT "version" FROM "Sheet" WHERE "id" = ${sheetId} AND "userId" = ${userId} FOR UPDATE`;
    if (!current) return null;
    const version = current.version + 1;
    // Versions before the current one have had a whole replacement's time to be let go of by every reader.
    await tx.$executeRaw`DELETE FROM "SheetRow" WHERE "sheetId" = ${sheetId} AND "version" < ${current.version}`;
    await insertSheetRows(tx, sheetId, version, parsed.rows);
    return tx.sheet.update({
      where: { id: sheetId },
      data: { version, columns: parsed.columns, rowCount: parsed.rows.length, dataUpdatedAt: new Date() },
      select: { id: true, version: true, dataUpdatedAt: true },
    });
  }, BULK_TRANSACTION_OPTIONS);
  if (!replaced) return null;
  await bumpOwnerVersion(deps.redis, userId).catch((error: unknown) => {
    console.error("sheets: the replacement of %s committed, but its cache bump failed:", sheetId, error);
  });
  return {
    sheetId: replaced.id,
    rows: parsed.rows.length,
    columns: parsed.columns,
    version: replaced.version,
    dataUpdatedAt: replaced.dataUpdatedAt,
  };
}
