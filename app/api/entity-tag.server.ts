import { createHash } from "node:crypto";
import type { SheetQuery } from "~/models/sheets.server";

/**
 * What identifies one page of a sheet: the sheet, its version (rows change only with it) and the query in a
 * canonical form, so that `?city=Paris&limit=10` and `?limit=10&city=Paris` share a cache entry and an ETag.
 * Filters are ANDed, so their order does not matter; each column appears at most once (the parser refuses repeats).
 * `fields` keeps its order: it is the order of the keys in the answer.
 */
export function pageCacheKey(sheet: { id: string; version: number }, query: SheetQuery): string {
  const filters = query.filters
    .map(({ column, value }) => [column, value])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    sheet.id,
    sheet.version,
    query.limit,
    query.offset,
    query.sort?.column ?? null,
    query.sort?.order ?? null,
    query.search ?? null,
    filters,
    query.fields ?? null,
  ]);
}

// Part of every tag: a release that changes how a page is written (field order, meta) must not answer 304 to a
// client holding the old bytes. Change it with the body's format.
// sheet-page/2: `meta` carries the sheet's `version` and `updatedAt`.
const BODY_FORMAT = "sheet-page/2";

/**
 * A strong ETag for a page: the hash of what the body is a pure function of (the format, the sheet's version and the
 * normalised query), so it is known before the rows are read and a 304 needs no database at all.
 */
export function entityTagFor(pageKey: string): string {
  return `"${createHash("sha256").update(BODY_FORMAT).update("\n").update(pageKey).digest("base64url").slice(0, 32)}"`;
}

/**
 * Whether an `If-None-Match` header names this tag (RFC 9110 §13.1.2: `*` matches any current representation; the
 * comparison is weak, so `W/"x"` matches `"x"`). Tags are compared whole, never as substrings.
 */
export function ifNoneMatchHits(header: string, etag: string): boolean {
  const trimmed = header.trim();
  if (trimmed === "*") return true;
  if (trimmed === etag) return true;
  for (const part of trimmed.split(",")) {
    const candidate = part.trim();
    if ((candidate.startsWith("W/") ? candidate.slice(2) : candidate) === etag) return true;
  }
  return false;
}
