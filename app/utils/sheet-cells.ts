/** A cell of a sheet once typed on import, as the API returns it and the preview shows it. */
export type CellValue = string | number | boolean | null;

export type SheetRowData = Record<string, CellValue>;
