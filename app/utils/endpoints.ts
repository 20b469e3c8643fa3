/**
 * Paths of the app's HTTP endpoints that code outside their route modules must name: the dev stack and the
 * schedule script point QStash at the sync route, and pages show customers where their sheets are served.
 */
export const SYNC_ROUTE_PATH = "/api/cron/update-usage";

/** Where each URL-sourced sheet's QStash schedule sends its refresh (body `{"sheetId": …}`). */
export const REFRESH_SHEET_ROUTE_PATH = "/api/cron/refresh-sheet";

/** Where QStash reports what became of each webhook delivery (Upstash-Callback and Upstash-Failure-Callback). */
export const WEBHOOK_STATUS_ROUTE_PATH = "/api/webhooks/delivery-status";

export const SHEET_API_PATH = "/api/v1/sheets";

export const USAGE_API_PATH = "/api/v1/usage";

/** Where a sheet's rows are served. */
export function sheetEndpoint(appUrl: string, sheetId: string): string {
  return `${appUrl}${SHEET_API_PATH}/${sheetId}`;
}

/** The environment variable the docs and examples read a key from, so no page shows a key that is not real. */
export const KEY_VARIABLE = "SHEETMETER_KEY";

/**
 * A curl command that runs as pasted into a POSIX shell: the key in double quotes (so `$SHEETMETER_KEY` expands),
 * the URL in single quotes (so `&` and `?` stay literal), with any single quote in it percent-encoded.
 */
export function curlCommand(url: string, key: string): string {
  return `curl -H "Authorization: Bearer ${key}" '${url.replaceAll("'", "%27")}'`;
}
