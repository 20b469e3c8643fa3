import { Link } from "@remix-run/react";
import { CopyButton } from "~/components/copy-button";
import { formatCount, formatDateTime } from "~/utils/format";
import { sheetEndpoint } from "~/utils/endpoints";
import type { Part, SheetSummaryView } from "./types";

export function SheetSummary({
  sheets,
  appUrl,
}: {
  sheets: Part<{ sheets: SheetSummaryView[]; hasMore: boolean }>;
  appUrl: string;
}) {
  return (
    <section
      data-testid="sheet-summary"
      aria-labelledby="sheet-summary-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5"
    >
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="sheet-summary-heading" className="text-base font-semibold text-slate-900">
          Your sheets
        </h2>
        <Link to="/sheets" className="text-sm font-medium text-indigo-700 underline hover:text-indigo-900">
          {sheets.ok && sheets.data.hasMore ? "See all sheets" : "Manage sheets"}
        </Link>
      </div>
      {!sheets.ok ? (
        <p className="mt-3 text-sm text-slate-700">
          Your sheets cannot be listed right now; try reloading in a minute.
        </p>
      ) : sheets.data.sheets.length === 0 ? (
        <p className="mt-3 text-sm text-slate-700">
          No sheets yet.{" "}
          <Link to="/sheets" className="font-medium text-indigo-700 underline">
            Upload a CSV
          </Link>{" "}
          to get an API endpoint for it.
        </p>
      ) : (
        <ul className="mt-3 divide-y divide-slate-200">
          {sheets.data.sheets.map((sheet) => {
            const endpoint = sheetEndpoint(appUrl, sheet.id);
            return (
              <li key={sheet.id} className="py-3 first:pt-0 last:pb-0">
                <div className="flex flex-wrap items-baseline justify-between gap-x-3">
                  <p className="min-w-0 break-words font-medium text-slate-900">{sheet.name}</p>
                  <p className="text-sm tabular-nums text-slate-600">
                    {formatCount(sheet.rowCount)} {sheet.rowCount === 1 ? "row" : "rows"}
                  </p>
                </div>
                <p className="text-xs text-slate-500" data-testid="sheet-data-updated">
                  Data last changed {formatDateTime(new Date(sheet.dataUpdatedAt))}
                </p>
                <div className="mt-1 flex items-start gap-2">
                  <code className="min-w-0 flex-1 break-all rounded bg-slate-100 px-2 py-1 text-xs text-slate-800">
                    GET {endpoint}
                  </code>
                  <CopyButton text={endpoint} label={`Copy the endpoint of ${sheet.name}`} />
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
