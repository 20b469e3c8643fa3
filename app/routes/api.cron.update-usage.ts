import type { ActionFunctionArgs } from "@remix-run/node";
import { json } from "@remix-run/node";
import type { Redis } from "@upstash/redis";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { z } from "zod";
import {
  createSyncRedis,
  markSyncRunFailed,
  SyncRunNotFoundError,
  syncUsageSnapshots,
} from "~/models/usage-sync.server";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { methodNotAllowed, problem } from "~/utils/problem.server";
import { getQstash, getReceiver } from "~/utils/qstash.server";

/**
 * `POST /api/cron/update-usage` — called by QStash every hour (body `{}`) and by the sync's own continuations
 * (body `{ runId, cursor }`). Only QStash can call it: the signature covers the URL and the exact body. See
 * docs/sync.md.
 */
export const SYNC_ROUTE_PATH = "/api/cron/update-usage";

const deliverySchema = z.union([
  z.object({ runId: z.string().min(1), cursor: z.string().regex(/^\d+$/) }).strict(),
  z.object({}).strict(),
]);

class UnsignedError extends Error {}

// The sync's own Redis client (see createSyncRedis), created once and kept across dev reloads like the app's.
const globalForSync = globalThis as unknown as { __sheetmeterSyncRedis?: Redis };

function getSyncRedis(): Redis {
  const env = getEnv();
  globalForSync.__sheetmeterSyncRedis ??= createSyncRedis(env.UPSTASH_REDIS_REST_URL, env.UPSTASH_REDIS_REST_TOKEN);
  return globalForSync.__sheetmeterSyncRedis;
}

/**
 * `Receiver.verify` checks the HS256 signature with either key, the issuer, `exp`/`nbf` when present, the subject
 * against our URL and the body hash. It accepts a token without `exp` (valid forever if it ever leaked) and any
 * HS* algorithm; QStash always signs HS256 with an expiry, so anything else is not QStash and is refused too.
 */
async function verifyDelivery(request: Request, body: string, url: string): Promise<void> {
  const signature = request.headers.get("Upstash-Signature");
  if (!signature) throw new UnsignedError("no Upstash-Signature header");
  try {
    await getReceiver().verify({ signature, body, url });
    if (decodeProtectedHeader(signature).alg !== "HS256") throw new UnsignedError("algorithm is not HS256");
    if (typeof decodeJwt(signature).exp !== "number") throw new UnsignedError("token has no expiry");
  } catch (error) {
    if (error instanceof UnsignedError) throw error;
    // The SDK's messages name the failed check (subject, body hash…) and never include a key, but after a failed
    // claim check with the current key it retries the next one and reports only that key's signature mismatch;
    // the claims say what really happened, which is what an operator needs from the log.
    throw new UnsignedError(claimProblem(signature) ?? (error as Error).message.split("\n")[0].slice(0, 200));
  }
}

function claimProblem(token: string): string | undefined {
  try {
    const { iss, exp, nbf } = decodeJwt(token);
    const now = Date.now() / 1000;
    if (iss !== "Upstash") return "issuer is not Upstash";
    if (typeof exp === "number" && exp <= now) return "signature expired";
    if (typeof nbf === "number" && nbf > now) return "signature not valid yet";
  } catch {
    return undefined;
  }
  return undefined;
}

export async function action({ request }: ActionFunctionArgs) {
  if (request.method !== "POST") return methodNotAllowed(["POST"]);
  const env = getEnv();
  const url = env.APP_URL + SYNC_ROUTE_PATH;
  const messageId = request.headers.get("Upstash-Message-Id");
  // The signature covers these exact bytes: read them before anything parses (and possibly re-serialises) them.
  const body = await request.text();

  try {
    await verifyDelivery(request, body, url);
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

  const db = getDb();
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
  return json(result);
}

export function loader() {
  return methodNotAllowed(["POST"]);
}

function unavailable(detail: string) {
  return problem({ status: 503, type: "sync-unavailable", title: "Sync unavailable", detail }, { "Retry-After": "30" });
}
