import type { LoaderFunctionArgs } from "@remix-run/node";
import { requireUser } from "~/auth/session-user.server";
import { getUsageBuckets, usageExportCsv, usageExportFilename } from "~/models/usage-buckets.server";
import { dashboardHistoryRange } from "~/models/usage-history.server";
import { withDatabaseOutagePage } from "~/utils/database-outage.server";
import { getDb } from "~/utils/db.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";
import { parseRange, parseView, USAGE_VIEWS } from "~/utils/usage-ranges";

/**
 * GET /dashboard/usage.csv?range=7d&view=day: the chart's range as the API's history export would give it, for the
 * signed-in customer (a session, not an API key, so it needs none). The cumulative view downloads hours: each row
 * carries the running total too.
 */
export const loader = withSecurityHeaders(({ request }: LoaderFunctionArgs) =>
  withDatabaseOutagePage(async () => {
    const user = await requireUser(request);
    const params = new URL(request.url).searchParams;
    const granularity = USAGE_VIEWS[parseView(params.get("view"))].granularity;
    const range = dashboardHistoryRange(parseRange(params.get("range")), granularity, new Date());
    const buckets = await getUsageBuckets(getDb(), user.id, range);
    return new Response(usageExportCsv(buckets, granularity), {
      headers: {
        "Content-Type": "text/csv; charset=utf-8; header=present",
        "Content-Disposition": `attachment; filename="${usageExportFilename(range)}"`,
        // One customer's usage: never kept by a browser cache or a proxy.
        "Cache-Control": "private, no-store",
      },
    });
  }),
);
