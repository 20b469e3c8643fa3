import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { methodNotAllowed, problem } from "~/api/problem.server";
import { acceptQstashDelivery } from "~/api/qstash-delivery.server";
import { deleteSheetRefreshSchedule } from "~/models/sheet-schedules.server";
import { appSheetSourceDeps, refreshSheetSource } from "~/models/sheet-sources.server";
import { REFRESH_SHEET_ROUTE_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";
import { getRedis } from "~/utils/redis.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

const deliverySchema = z.object({ sheetId: z.string().min(1).max(64) }).strict();

/**
 * `POST /api/cron/refresh-sheet` — called by a URL sheet's QStash schedule with `{"sheetId": …}`. Verified exactly
 * like the usage sync (bounded body, signature for this URL and body, token used once). A source that fails is an
 * outcome, recorded on the sheet and answered 200: the next scheduled run tries again, and QStash retrying a dead
 * link within minutes would only hammer it. Our own stores failing is answered 503, so QStash retries. See
 * docs/sheets.md.
 */
export const action = withSecurityHeaders(async ({ request }: ActionFunctionArgs) => {
  if (request.method !== "POST") return methodNotAllowed(["POST"]);
  const url = getEnv().APP_URL + REFRESH_SHEET_ROUTE_PATH;
  const delivery = await acceptQstashDelivery(request, {
    url,
    redis: getRedis(),
    logPrefix: "sheet-refresh",
    rejectDetail: "This endpoint only accepts requests signed by QStash for this URL and body.",
    unavailable: () => unavailable("The refresh could not record this delivery; QStash will retry."),
  });
  if (delivery instanceof Response) return delivery;

  const response = await runRefresh(delivery.body, delivery.messageId);
  if (!response.ok) await delivery.release();
  return response;
});

async function runRefresh(body: string, messageId: string | null): Promise<Response> {
  let sheetId: string;
  try {
    sheetId = deliverySchema.parse(JSON.parse(body)).sheetId;
  } catch {
    return problem({
      status: 400,
      type: "invalid-body",
      title: "Invalid body",
      detail: 'Send {"sheetId": "…"}, as the sheet\'s refresh schedule does.',
    });
  }

  const deps = appSheetSourceDeps();
  try {
    const outcome = await refreshSheetSource(deps, { sheetId });
    if (outcome.status === "missing") {
      // The sheet went while its schedule stayed (deleted with QStash unreachable, or its account removed): the
      // schedule is removed here, so it stops calling. 200 either way: there is nothing to retry.
      const removed = await deleteSheetRefreshSchedule(deps.qstash, sheetId).then(
        () => true,
        () => false,
      );
      console.warn(JSON.stringify({ event: "sheet-refresh.orphan", messageId, sheetId, scheduleRemoved: removed }));
      return Response.json({ ...outcome, scheduleRemoved: removed });
    }
    console.info(JSON.stringify({ event: "sheet-refresh.done", messageId, ...outcome }));
    return Response.json(outcome);
  } catch (error) {
    console.error(
      JSON.stringify({
        event: "sheet-refresh.error",
        messageId,
        sheetId,
        error: (error as Error).message.split("\n")[0],
      }),
    );
    return unavailable("The refresh could not read or write the sheet; QStash will retry.");
  }
}

export const loader = withSecurityHeaders(() => methodNotAllowed(["POST"]));

function unavailable(detail: string) {
  return problem(
    { status: 503, type: "refresh-unavailable", title: "Refresh unavailable", detail },
    { "Retry-After": "30" },
  );
}
