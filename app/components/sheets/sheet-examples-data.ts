import type { CellValue, SheetRowData } from "~/utils/sheet-cells";

/** Query parameters the API reads itself; a column with one of these names cannot be filtered on. */
const RESERVED_PARAMETERS = new Set(["limit", "offset", "sort", "order", "search", "fields"]);
/** How many columns the `fields=` example picks. */
const FIELDS_EXAMPLE_COLUMNS = 2;
/** A sample value longer than this makes a poor example URL; a shorter cell is looked for. */
const MAX_EXAMPLE_VALUE_LENGTH = 40;

export interface SheetExample {
  title: string;
  url: string;
  /** The exact JSON the call returns, when it can be known from the first row alone. */
  response: string | null;
}

/**
 * A parameter name or value in a URL: percent-encoded, but readable where it can be (a comma stays a comma, as in
 * `fields=a,b`, because the API splits on it after decoding anyway).
 */
function encode(text: string): string {
  return encodeURIComponent(text).replaceAll("%2C", ",");
}

function query(pairs: [string, string][]): string {
  return pairs.map(([name, value]) => `${encode(name)}=${encode(value)}`).join("&");
}

function response(rows: SheetRowData[], total: number, limit: number): string {
  return JSON.stringify({ data: rows, meta: { total, limit, offset: 0 } }, null, 2);
}

function isFilterable(column: string, value: CellValue | undefined): value is string | number | boolean {
  if (RESERVED_PARAMETERS.has(column) || value === null || value === undefined) return false;
  return String(value).length <= MAX_EXAMPLE_VALUE_LENGTH;
}

/**
 * Examples for one sheet, from its columns and first row: the first page, a filter on a value the first row holds
 * (so it matches at least that row) sorted by a numeric column, a `fields=` selection, and paging. The first and the
 * `fields=` example ask for one row, so their responses are exactly the first row (the API's order without `sort`
 * is file order, and `meta.total` is the sheet's row count without filters).
 */
export function buildSheetExamples({
  endpoint,
  columns,
  firstRow,
  rowCount,
}: {
  endpoint: string;
  columns: string[];
  firstRow: SheetRowData | null;
  rowCount: number;
}): SheetExample[] {
  const examples: SheetExample[] = [
    {
      title: "The first row",
      url: `${endpoint}?limit=1`,
      response: response(firstRow ? [firstRow] : [], rowCount, 1),
    },
  ];
  if (firstRow) {
    // A text value reads best as a filter ("country=France"); any typed value works (numbers match as numbers).
    const filterColumn =
      columns.find((column) => typeof firstRow[column] === "string" && isFilterable(column, firstRow[column])) ??
      columns.find((column) => isFilterable(column, firstRow[column]));
    const sortColumn = columns.find((column) => typeof firstRow[column] === "number" && column !== filterColumn);
    const pairs: [string, string][] = [];
    if (filterColumn) pairs.push([filterColumn, String(firstRow[filterColumn])]);
    if (sortColumn) pairs.push(["sort", sortColumn], ["order", "desc"]);
    if (pairs.length > 0) {
      const what = [
        filterColumn ? `rows whose ${filterColumn} is ${String(firstRow[filterColumn])}` : "all rows",
        sortColumn ? `, highest ${sortColumn} first` : "",
      ].join("");
      examples.push({ title: `Filter and sort: ${what}`, url: `${endpoint}?${query(pairs)}`, response: null });
    }
  }
  // A column whose name holds a comma cannot be named in the comma-separated list.
  const picked = columns.filter((column) => !column.includes(",")).slice(0, FIELDS_EXAMPLE_COLUMNS);
  if (picked.length > 0 && picked.length < columns.length) {
    const projected = firstRow ? Object.fromEntries(picked.map((column) => [column, firstRow[column] ?? null])) : null;
    examples.push({
      title: `Only some columns: ${picked.join(" and ")}`,
      url: `${endpoint}?fields=${picked.map(encode).join(",")}&limit=1`,
      response: projected ? response([projected], rowCount, 1) : null,
    });
  }
  if (rowCount > 10) {
    examples.push({ title: "The second page of 10 rows", url: `${endpoint}?limit=10&offset=10`, response: null });
  }
  return examples;
}
