import { Form, useNavigation } from "@remix-run/react";
import type { SheetSourceSummary } from "~/sheets/url-source-actions.server";
import { SCHEDULE_LABELS } from "./url-source-form";

const STATUS_TEXT = {
  updated: "updated",
  unchanged: "no changes",
  failed: "failed",
} as const;

const smallButton = "rounded border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-100 disabled:opacity-60";

/**
 * A URL sheet's source under its entry on /sheets: where it comes from, how often it is fetched (changeable), when
 * the last refresh ran and how it went, the error of a failed one (the rows stay as they were), and "Refresh now".
 */
export function SheetSourceStatus({
  sheetId,
  source,
  error,
}: {
  sheetId: string;
  source: SheetSourceSummary;
  /** An error of this sheet's last form (refresh or schedule change). */
  error?: string;
}) {
  const navigation = useNavigation();
  const pending = (intent: string) =>
    navigation.state === "submitting" &&
    navigation.formData?.get("intent") === intent &&
    navigation.formData?.get("sheetId") === sheetId;
  const failed = source.lastRefreshStatus === "failed";

  return (
    <div data-testid="sheet-source" className="mt-3 space-y-2 rounded border border-slate-200 bg-slate-50 p-3 text-sm">
      <p className="flex min-w-0 gap-1 text-slate-700">
        <span className="shrink-0">Source:</span>
        <a
          href={source.url}
          className="truncate text-indigo-700 underline"
          title={source.url}
          rel="noreferrer noopener"
        >
          {source.url}
        </a>
      </p>
      <p data-testid="last-refresh" className="text-slate-700">
        {source.lastRefreshAt ? (
          <>
            Last refresh: {source.lastRefreshAt} ·{" "}
            <span className={failed ? "font-medium text-red-700" : "text-slate-700"}>
              {source.lastRefreshStatus ? STATUS_TEXT[source.lastRefreshStatus] : "unknown"}
            </span>
          </>
        ) : (
          "Not refreshed yet."
        )}
      </p>
      {failed && source.lastRefreshError ? (
        <p role="status" className="rounded border border-red-200 bg-red-50 px-2 py-1 text-red-800">
          The last refresh failed, so the API still serves the previous data: {source.lastRefreshError}
        </p>
      ) : null}
      {error ? (
        <p role="alert" className="rounded border border-red-200 bg-red-50 px-2 py-1 text-red-800">
          {error}
        </p>
      ) : null}
      <div className="flex flex-wrap items-end gap-3">
        <Form method="post" className="flex flex-wrap items-end gap-2">
          <input type="hidden" name="intent" value="set-schedule" />
          <input type="hidden" name="sheetId" value={sheetId} />
          <label className="text-slate-800">
            <span className="block text-xs font-medium text-slate-600">Refresh</span>
            <select
              name="schedule"
              defaultValue={source.schedule}
              className="mt-0.5 rounded border border-slate-300 bg-white px-2 py-1.5 text-sm"
            >
              {Object.entries(SCHEDULE_LABELS).map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" className={smallButton} disabled={pending("set-schedule")}>
            Save schedule
          </button>
        </Form>
        <Form method="post">
          <input type="hidden" name="intent" value="refresh" />
          <input type="hidden" name="sheetId" value={sheetId} />
          <button type="submit" className={smallButton} disabled={pending("refresh")}>
            {pending("refresh") ? "Refreshing…" : "Refresh now"}
          </button>
        </Form>
      </div>
    </div>
  );
}
