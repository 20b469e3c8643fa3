import type { SheetQuery } from "~/models/sheets.server";

// Parsed before the quota is touched: a call with a bad parameter is answered 400 and costs nothing.
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
const MAX_OFFSET = 2_147_483_647;
const MAX_SEARCH_LENGTH = 200;
const RESERVED_PARAMS = new Set(["limit", "offset", "sort", "order", "search", "fields"]);

export type ParsedQuery = { ok: true; query: SheetQuery } | { ok: false; parameter: string; detail: string };

/**
 * Validates the query string against the sheet's columns. Every other parameter name is an exact-match filter and
 * must be one of the columns, as written in the header; anything else is named back in the error.
 */
export function parseSheetQuery(params: URLSearchParams, columns: readonly string[]): ParsedQuery {
  const fail = (parameter: string, detail: string): ParsedQuery => ({ ok: false, parameter, detail });
  const known = new Set(columns);
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) return fail(name, `The parameter “${name}” is given more than once; give it once.`);
    seen.add(name);
  }

  const integer = (name: string, fallback: number, min: number, max: number): number | ParsedQuery => {
    const raw = params.get(name);
    if (raw === null) return fallback;
    // Digits only: "1e3", "0x10", " 5" and "-1" are all refused rather than guessed at.
    if (!/^\d{1,10}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      return fail(name, `“${name}” must be a whole number from ${min} to ${max}, got “${raw}”.`);
    }
    return Number(raw);
  };

  const limit = integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT);
  if (typeof limit !== "number") return limit;
  const offset = integer("offset", 0, 0, MAX_OFFSET);
  if (typeof offset !== "number") return offset;

  let sort: SheetQuery["sort"];
  const sortColumn = params.get("sort");
  const order = params.get("order");
  if (order !== null && order !== "asc" && order !== "desc") {
    return fail("order", `“order” must be “asc” or “desc”, got “${order}”.`);
  }
  if (sortColumn !== null) {
    if (!known.has(sortColumn)) return fail("sort", unknownColumn("sort", sortColumn, columns));
    sort = { column: sortColumn, order: order ?? "asc" };
  } else if (order !== null) {
    return fail("order", "“order” needs “sort=<column>” to say what to order by.");
  }

  const search = params.get("search");
  if (search !== null && (search.trim() === "" || search.length > MAX_SEARCH_LENGTH)) {
    return fail("search", `“search” must be 1 to ${MAX_SEARCH_LENGTH} characters.`);
  }

  const fields = parseFields(params.get("fields"), known, columns);
  if (fields !== undefined && !Array.isArray(fields)) return fields;

  const filters: SheetQuery["filters"] = [];
  for (const [name, value] of params) {
    if (RESERVED_PARAMS.has(name)) continue;
    if (!known.has(name)) return fail(name, unknownColumn(name, name, columns));
    filters.push({ column: name, value });
  }
  return { ok: true, query: { limit, offset, sort, filters, search: search ?? undefined, fields } };
}

/**
 * `fields=a,b`: the columns to answer with, in the order given. Names are split on commas and trimmed (column names
 * are trimmed on import, so nothing is lost); an empty name, a repeat or a name that is not a column is refused,
 * every unknown name listed at once so a client fixes them in one go.
 */
function parseFields(
  raw: string | null,
  known: ReadonlySet<string>,
  columns: readonly string[],
): string[] | undefined | Extract<ParsedQuery, { ok: false }> {
  if (raw === null) return undefined;
  const fail = (detail: string) => ({ ok: false as const, parameter: "fields", detail });
  const names = raw.split(",").map((name) => name.trim());
  if (names.some((name) => name === "")) {
    return fail("“fields” must be column names separated by commas, with none empty.");
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) return fail(`“fields” names the column “${name}” more than once; name it once.`);
    seen.add(name);
  }
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    const listed = unknown
      .slice(0, 20)
      .map((name) => `“${name}”`)
      .join(", ");
    const more = unknown.length > 20 ? `, and ${unknown.length - 20} more` : "";
    const what = unknown.length === 1 ? "is not a column" : "are not columns";
    return fail(`“fields” names ${listed}${more}, which ${what} of this sheet. ${columnList(columns)}`);
  }
  return names;
}

function columnList(columns: readonly string[]): string {
  const shown = columns
    .slice(0, 20)
    .map((column) => `“${column}”`)
    .join(", ");
  const more = columns.length > 20 ? `, and ${columns.length - 20} more` : "";
  return `Columns: ${shown}${more}.`;
}

function unknownColumn(parameter: string, name: string, columns: readonly string[]): string {
  const what = parameter === "sort" ? "“sort” names" : "The parameter";
  return `${what} “${name}”, which is not a column of this sheet. ${columnList(columns)}`;
}
