import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { methodNotAllowed, problem } from "~/api/problem.server";
import { acceptQstashDelivery } from "~/api/qstash-delivery.server";
import { noteUnpublishedContinuation, SyncRunNotFoundError } from "~/models/sync-runs.server";
import { syncUsageSnapshots } from "~/models/usage-sync.server";
import { appWebhookDeps, republishPendingThresholdEvents } from "~/models/webhook-events.server";
import { getBulkDb } from "~/utils/db.server";
import { SYNC_ROUTE_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";
import { getQstash } from "~/utils/qstash.server";
import { getSyncRedis } from "~/utils/redis.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

const deliverySchema = z.union([
  z.object({ runId: z.string().min(1), step: z.number().int().min(1) }).strict(),
  z.object({}).strict(),
]);

/**
 * `POST /api/cron/update-usage` — called by QStash every hour (body `{}`) and by the sync's own continuations
 * (body `{ runId, step }`). Only QStash can call it: the signature covers the URL and the exact body. See
 * docs/sync.md.
 */
export const action = withSecurityHeaders(async ({ request }: ActionFunctionArgs) => {
  if (request.method !== "POST") return methodNotAllowed(["POST"]);
  const env = getEnv();
  const url = env.APP_URL + SYNC_ROUTE_PATH;
  const delivery = await acceptQstashDelivery(request, {
    url,
    redis: getSyncRedis(),
    logPrefix: "sync",
    rejectDetail: "This endpoint only accepts requests signed by QStash for this URL and body.",
    unavailable: () => unavailable("The sync could not record this delivery; QStash will retry."),
  });
  if (delivery instanceof Response) return delivery;
  const { body, messageId } = delivery;

  const response = await runDelivery(body, { url, messageId, budgetMs: env.SYNC_TIME_BUDGET_MS });
  if (!response.ok) await delivery.release();
  return response;
});

async function runDelivery(
  body: string,
  { url, messageId, budgetMs }: { url: string; messageId: string | null; budgetMs: number },
): Promise<Response> {
  let delivery: z.infer<typeof deliverySchema>;
  try {
    delivery = deliverySchema.parse(body.trim() === "" ? {} : JSON.parse(body));
  } catch {
    return problem({
      status: 400,
      type: "invalid-body",
      title: "Invalid body",
      detail: 'Send {} for a scheduled run or {"runId","step"} for a continuation.',
    });
  }

  // Batched upserts of thousands of snapshots need more than a page request's statement deadline.
  const db = getBulkDb();
  const continuation =
    "runId" in delivery && "step" in delivery ? { runId: delivery.runId, step: delivery.step } : undefined;
  let result;
  try {
    result = await syncUsageSnapshots({ redis: getSyncRedis(), db }, { budgetMs, messageId, continuation });
  } catch (error) {
    if (error instanceof SyncRunNotFoundError) {
      return problem({ status: 404, type: "sync-run-not-found", title: "Unknown sync run", detail: error.message });
    }
    console.error(JSON.stringify({ event: "sync.error", messageId, error: (error as Error).message.split("\n")[0] }));
    return unavailable("The sync could not start or record its progress; QStash will retry.");
  }

  console.info(JSON.stringify({ event: "sync.chunk", messageId, ...result }));
  if (result.busy) {
    // Another worker is on this step right now. Any non-2xx makes QStash deliver again, and it honours
    // Retry-After; by then the step is done (→ 200 duplicate) or its worker is gone and the lease lapsed.
    const seconds = Math.max(1, Math.ceil(result.busy.retryAfterMs / 1000));
    return problem(
      {
        status: 409,
        type: "sync-run-busy",
        title: "Sync run busy",
        detail: `Another delivery is working on step ${result.step} of run ${result.runId}; retry in ${seconds} s.`,
      },
      { "Retry-After": String(seconds) },
    );
  }
  if (result.status === "failed" && !result.duplicate && !result.superseded) {
    // 5xx makes QStash retry this message; the retry resumes the run after its last committed page.
    return unavailable(`The sync failed and will be retried from where it stopped: ${result.error ?? "unknown error"}`);
  }
  if (result.next) {
    const next = result.next;
    try {
      // The deduplication id names the step, so publishing it again (a retry of this delivery, below) cannot
      // queue a second message for the same step while QStash remembers the first.
      await getQstash().publishJSON({
        url,
        body: next,
        retries: 3,
        deduplicationId: `run-${next.runId}-step-${next.step}`,
      });
    } catch (error) {
      // The run stays "continued" at the next step: QStash's retry of this message finds it so (a duplicate of
      // the step it ran) and publishes the continuation again.
      const reason = `could not publish the continuation: ${(error as Error).message.split("\n")[0]}`;
      await noteUnpublishedContinuation(db, next, reason).catch(() => {});
      return unavailable(`The sync ${reason}; QStash will retry.`);
    }
  }
  if (result.status === "succeeded" && !result.duplicate) await republishPendingAlerts(messageId);
  return Response.json(result);
}

/**
 * A run's last step also publishes again the usage alerts that never reached QStash (it was down when the call
 * crossed the threshold): the hourly sync is the one process sure to run with QStash at hand. Their deduplication
 * ids make a second publish harmless. A failure here is logged and waits for the next hour; the sync itself is done.
 */
async function republishPendingAlerts(messageId: string | null) {
  try {
    const republished = await republishPendingThresholdEvents(appWebhookDeps());
    if (republished.attempted > 0)
      console.info(JSON.stringify({ event: "alerts.republished", messageId, ...republished }));
  } catch (error) {
    console.error(JSON.stringify({ event: "alerts.error", messageId, error: (error as Error).message.split("\n")[0] }));
  }
}

export const loader = withSecurityHeaders(() => methodNotAllowed(["POST"]));

function unavailable(detail: string) {
  return problem({ status: 503, type: "sync-unavailable", title: "Sync unavailable", detail }, { "Retry-After": "30" });
}
