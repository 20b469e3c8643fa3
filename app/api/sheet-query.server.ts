import type { SheetQuery } from "~/models/sheets.server";

// Parsed before the quota is touched: a call with a bad parameter is answered 400 and costs nothing.
export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
const MAX_OFFSET = 2_147_483_647;
const MAX_SEARCH_LENGTH = 200;
const RESERVED_PARAMS = new Set(["limit", "offset", "sort", "order", "search"]);

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

  const filters: SheetQuery["filters"] = [];
  for (const [name, value] of params) {
    if (RESERVED_PARAMS.has(name)) continue;
    if (!known.has(name)) return fail(name, unknownColumn(name, name, columns));
    filters.push({ column: name, value });
  }
  return { ok: true, query: { limit, offset, sort, filters, search: search ?? undefined } };
}

function unknownColumn(parameter: string, name: string, columns: readonly string[]): string {
  const shown = columns
    .slice(0, 20)
    .map((column) => `“${column}”`)
    .join(", ");
  const more = columns.length > 20 ? `, and ${columns.length - 20} more` : "";
  const what = parameter === "sort" ? "“sort” names" : "The parameter";
  return `${what} “${name}”, which is not a column of this sheet. Columns: ${shown}${more}.`;
}
