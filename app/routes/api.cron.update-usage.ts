import type { ActionFunctionArgs } from "@remix-run/node";
import { z } from "zod";
import { methodNotAllowed, problem } from "~/api/problem.server";
import { markSyncRunFailed, SyncRunNotFoundError } from "~/models/sync-runs.server";
import { syncUsageSnapshots } from "~/models/usage-sync.server";
import { getBulkDb } from "~/utils/db.server";
import { SYNC_ROUTE_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";
import { getQstash, verifyQstashSignature } from "~/utils/qstash.server";
import { getSyncRedis } from "~/utils/redis.server";

const deliverySchema = z.union([
  z.object({ runId: z.string().min(1), cursor: z.string().regex(/^\d+$/) }).strict(),
  z.object({}).strict(),
]);

/**
 * `POST /api/cron/update-usage` — called by QStash every hour (body `{}`) and by the sync's own continuations
 * (body `{ runId, cursor }`). Only QStash can call it: the signature covers the URL and the exact body. See
 * docs/sync.md.
 */
export async function action({ request }: ActionFunctionArgs) {
  if (request.method !== "POST") return methodNotAllowed(["POST"]);
  const env = getEnv();
  const url = env.APP_URL + SYNC_ROUTE_PATH;
  const messageId = request.headers.get("Upstash-Message-Id");
  // The signature covers these exact bytes: read them before anything parses (and possibly re-serialises) them.
  const body = await request.text();

  try {
    await verifyQstashSignature(request, body, url);
  } catch (error) {
    console.warn(
      JSON.stringify({ event: "sync.rejected", reason: (error as Error).message, messageId, bytes: body.length }),
    );
    return problem({
      status: 401,
      type: "invalid-signature",
      title: "Invalid signature",
      detail: "This endpoint only accepts requests signed by QStash for this URL and body.",
    });
  }

  let delivery: z.infer<typeof deliverySchema>;
  try {
    delivery = deliverySchema.parse(body.trim() === "" ? {} : JSON.parse(body));
  } catch {
    return problem({
      status: 400,
      type: "invalid-body",
      title: "Invalid body",
      detail: 'Send {} for a scheduled run or {"runId","cursor"} for a continuation.',
    });
  }

  // Batched upserts of thousands of snapshots need more than a page request's statement deadline.
  const db = getBulkDb();
  const continuation = "runId" in delivery ? delivery : undefined;
  let result;
  try {
    result = await syncUsageSnapshots(
      { redis: getSyncRedis(), db },
      { budgetMs: env.SYNC_TIME_BUDGET_MS, messageId, runId: continuation?.runId, cursor: continuation?.cursor },
    );
  } catch (error) {
    if (error instanceof SyncRunNotFoundError) {
      return problem({ status: 404, type: "sync-run-not-found", title: "Unknown sync run", detail: error.message });
    }
    console.error(JSON.stringify({ event: "sync.error", messageId, error: (error as Error).message.split("\n")[0] }));
    return unavailable("The sync could not start or record its progress; QStash will retry.");
  }

  console.info(JSON.stringify({ event: "sync.chunk", messageId, ...result }));
  if (result.status === "failed") {
    // 5xx makes QStash retry this message; the retry resumes the run after its last committed batch.
    return unavailable(`The sync failed and will be retried from where it stopped: ${result.error ?? "unknown error"}`);
  }
  if (result.status === "continued" && !result.duplicate) {
    try {
      await getQstash().publishJSON({ url, body: { runId: result.runId, cursor: result.cursor }, retries: 3 });
    } catch (error) {
      // Without its continuation the run would wait forever: mark it failed so QStash's retry of this very
      // message takes the run back and carries on from the saved cursor.
      const reason = `could not publish the continuation: ${(error as Error).message.split("\n")[0]}`;
      await markSyncRunFailed(db, result.runId, reason).catch(() => {});
      return unavailable(`The sync ${reason}; QStash will retry.`);
    }
  }
  return Response.json(result);
}

export function loader() {
  return methodNotAllowed(["POST"]);
}

function unavailable(detail: string) {
  return problem({ status: 503, type: "sync-unavailable", title: "Sync unavailable", detail }, { "Retry-After": "30" });
}
