import type { Redis } from "@upstash/redis";
import { Prisma } from "~/generated/prisma/client";
import type { Db } from "~/utils/db.server";
import type { CellValue, SheetRowData } from "~/utils/sheet-cells";
import { typeCell } from "./csv-import.server";
import { bumpOwnerVersion } from "./owner-version.server";

export interface SheetSummary {
  id: string;
  name: string;
  columns: string[];
  rowCount: number;
  createdAt: Date;
  /** When the rows last changed (upload or replacement). */
  dataUpdatedAt: Date;
  version: number;
}

/** What the API needs to validate a query against a sheet and answer it. */
export interface SheetForQuery {
  id: string;
  columns: string[];
  rowCount: number;
  /** Changes whenever the rows do; cached pages and ETags are keyed by it, and rows are stored under it. */
  version: number;
  /** When the rows last changed; in every answer's `meta` as `updatedAt`. */
  dataUpdatedAt: Date;
}

export interface SheetQuery {
  limit: number;
  offset: number;
  sort?: { column: string; order: "asc" | "desc" };
  /** Exact matches, ANDed. Column names must already be checked against the sheet's columns. */
  filters: { column: string; value: string }[];
  search?: string;
  /** The columns to answer with, in this order (`?fields=`); all of them, in file order, when absent. */
  fields?: string[];
}

const summarySelect = {
  id: true,
  name: true,
  columns: true,
  rowCount: true,
  createdAt: true,
  dataUpdatedAt: true,
  version: true,
} as const;

/** Newest first; `take` limits how many. */
export function listSheets(db: Db, userId: string, options: { take?: number } = {}): Promise<SheetSummary[]> {
  return db.sheet.findMany({
    where: { userId },
    select: summarySelect,
    orderBy: [{ createdAt: "desc" }, { id: "asc" }],
    take: options.take,
  });
}

/** The newest `count` sheets, and whether the owner has more (for a short list that links to the full one). */
export async function listNewestSheets(
  db: Db,
  userId: string,
  count: number,
): Promise<{ sheets: SheetSummary[]; hasMore: boolean }> {
  // One row past the page says whether there are more, without a second (count) query.
  const rows = await listSheets(db, userId, { take: count + 1 });
  return { sheets: rows.slice(0, count), hasMore: rows.length > count };
}

/** The sheet if `userId` owns it; another owner's sheet and a missing one look the same (null). */
export function getSheetForOwner(db: Db, userId: string, sheetId: string): Promise<SheetSummary | null> {
  return db.sheet.findFirst({ where: { id: sheetId, userId }, select: summarySelect });
}

export function getSheetForQuery(db: Db, userId: string, sheetId: string): Promise<SheetForQuery | null> {
  return db.sheet.findFirst({
    where: { id: sheetId, userId },
    select: { id: true, columns: true, rowCount: true, version: true, dataUpdatedAt: true },
  });
}

/**
 * Deletes the sheet and (by cascade) its rows; false when the user has no such sheet. API processes hold the sheet
 * and its pages in memory, so the owner's cache version is bumped on both sides of the delete: before, so that
 * with Redis unreachable nothing is deleted (rather than a sheet that keeps being served from memory); after, so a
 * process that reloaded the sheet in between, tagged with the first bump's version, drops it on its next call.
 */
export async function deleteSheet(redis: Redis, db: Db, userId: string, sheetId: string): Promise<boolean> {
  await bumpOwnerVersion(redis, userId);
  const { count } = await db.sheet.deleteMany({ where: { id: sheetId, userId } });
  if (count === 1) await bumpOwnerVersion(redis, userId);
  return count === 1;
}

// `\`, `%` and `_` are LIKE's own syntax; a search for "50%" means those characters literally.
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
}

/**
 * The SQL condition for `column = value`. Values were typed on import, so "1.50" must find the number 1.5 and
 * "TRUE" the boolean true; comparing text as well finds strings that only look like numbers ("007"). An empty
 * value finds empty cells. The column name is a bound parameter used as a JSONB key, never SQL text.
 */
function filterCondition(column: string, value: string): Prisma.Sql {
  const typed: CellValue = typeCell(value);
  if (typed === null) return Prisma.sql`("data" -> ${column}::text) = 'null'::jsonb`;
  if (typeof typed === "string") return Prisma.sql`("data" ->> ${column}::text) = ${value}`;
  return Prisma.sql`(("data" -> ${column}::text) = ${JSON.stringify(typed)}::jsonb OR ("data" ->> ${column}::text) = ${value})`;
}

type VersionedSheet = Pick<SheetForQuery, "id" | "version">;

function whereClause(sheet: VersionedSheet, query: SheetQuery): Prisma.Sql {
  // The version's rows only: a replacement writes the next version beside them (sheet-data.server.ts).
  const conditions = [Prisma.sql`"sheetId" = ${sheet.id}`, Prisma.sql`"version" = ${sheet.version}::int`];
  for (const { column, value } of query.filters) conditions.push(filterCondition(column, value));
  if (query.search) {
    // Over values only: matching the JSON text would also match column names.
    conditions.push(
      Prisma.sql`EXISTS (SELECT 1 FROM jsonb_each_text("data") AS cell WHERE cell.value ILIKE ${likePattern(query.search)})`,
    );
  }
  return Prisma.join(conditions, " AND ");
}

function orderClause(query: SheetQuery): Prisma.Sql {
  if (!query.sort) return Prisma.sql`"index"`;
  // JSONB compares numbers as numbers and strings by collation. JSON null becomes SQL NULL so empty cells go last
  // in both directions; file order breaks ties so paging is stable.
  const direction = query.sort.order === "desc" ? Prisma.sql`DESC` : Prisma.sql`ASC`;
  return Prisma.sql`NULLIF("data" -> ${query.sort.column}::text, 'null'::jsonb) ${direction} NULLS LAST, "index"`;
}

/**
 * The SQL of one page: the rows, and the count of all matching rows when filters or a search narrow them (without
 * them the total is the sheet's row count). Exported so the benchmark's bare reference server runs exactly the
 * statements the API runs (`.text` and `.values` are what `pg` takes).
 */
export function sheetPageStatements(
  sheet: VersionedSheet,
  query: SheetQuery,
): { page: Prisma.Sql; count: Prisma.Sql | null } {
  const where = whereClause(sheet, query);
  const page = Prisma.sql`
    SELECT "data" FROM "SheetRow" WHERE ${where}
    ORDER BY ${orderClause(query)} LIMIT ${query.limit} OFFSET ${query.offset}`;
  const unfiltered = query.filters.length === 0 && !query.search;
  const count = unfiltered ? null : Prisma.sql`SELECT count(*)::int AS total FROM "SheetRow" WHERE ${where}`;
  return { page, count };
}

/** A stored row with its keys put back in the sheet's column order (JSONB does not keep key order). */
export function rowInColumnOrder(columns: readonly string[], data: SheetRowData): SheetRowData {
  const ordered: SheetRowData = {};
  for (const column of columns) ordered[column] = data[column] ?? null;
  return ordered;
}

/**
 * One page of rows of the sheet's `version`, filtered, searched and sorted in Postgres, plus the total that matched.
 * Rows come back with the keys `query.fields` names, in that order, or else all columns in the sheet's order.
 */
export async function querySheetRows(
  db: Db,
  sheet: Pick<SheetForQuery, "id" | "columns" | "rowCount" | "version">,
  query: SheetQuery,
): Promise<{ rows: SheetRowData[]; total: number }> {
  const statements = sheetPageStatements(sheet, query);
  const columns = query.fields ?? sheet.columns;
  const [page, total] = await Promise.all([
    db.$queryRaw<{ data: SheetRowData }[]>(statements.page),
    statements.count
      ? db.$queryRaw<{ total: number }[]>(statements.count).then(([row]) => row.total)
      : Promise.resolve(sheet.rowCount),
  ]);
  return { rows: page.map(({ data }) => rowInColumnOrder(columns, data)), total };
}

/** The first rows in file order, for the preview in the UI. */
export async function previewSheetRows(
  db: Db,
  sheet: Pick<SheetForQuery, "id" | "columns" | "rowCount" | "version">,
  limit = 20,
): Promise<SheetRowData[]> {
  const { rows } = await querySheetRows(db, sheet, { limit, offset: 0, filters: [] });
  return rows;
}
