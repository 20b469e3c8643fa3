import type { Redis } from "@upstash/redis";
import { noteApiKeyUsed } from "~/models/api-keys.server";
import { liveKeyCounts, listKeyUsage } from "~/models/key-usage.server";
import { getUsage } from "~/models/quota.server";
import { viaQuotaStore } from "~/models/quota-store.server";
import type { Db } from "~/utils/db.server";
import { periodOf } from "~/utils/period";
import { type ApiDeps, authenticate } from "./api-key-auth.server";
import type { AnswerNote } from "./sheet-request.server";
import { withOutageAnswer } from "./quota-store-outage.server";
import { rateLimitHeaders } from "./rate-limit-headers.server";

/**
 * How long the usage answer waits for the keys' names (Postgres). A cached key's usage needs only Redis and must keep
 * answering while Postgres is slow or down; past this, the keys come from Redis alone, by id.
 */
export const KEY_NAMES_WAIT_MS = 250;

interface KeyUsageItem {
  id: string;
  name: string | null;
  prefix: string | null;
  used: number;
}

async function keyBreakdown(deps: { redis: Redis; db: Db }, userId: string, now: Date): Promise<KeyUsageItem[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const named = await Promise.race([
    listKeyUsage(deps, userId, now).catch((error: unknown) => {
      console.warn(`usage: key names unavailable: ${(error as Error).message}`);
      return null;
    }),
    new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), KEY_NAMES_WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  if (named) return named.keys.map((key) => ({ id: key.id, name: key.name, prefix: key.prefix, used: key.used }));
  const live = await viaQuotaStore(() => liveKeyCounts(deps.redis, userId, periodOf(now)));
  return [...live].map(([id, used]) => ({ id, name: null, prefix: null, used }));
}

/**
 * `GET /api/v1/usage`: the key owner's usage this month, and each of their keys' share of it; consumes nothing. The
 * per-key counts fall back to the last sync's when Redis does not answer them, and to ids without names when
 * Postgres does not; the quota itself needs Redis only.
 */
export function handleUsageRequest(deps: ApiDeps, request: Request, note: AnswerNote = {}): Promise<Response> {
  return withOutageAnswer(async () => {
    const owner = await authenticate(deps, request);
    if (owner instanceof Response) return owner;
    note.userId = owner.userId;
    const now = new Date();
    const [usage, keys] = await Promise.all([
      viaQuotaStore(() => getUsage(deps.redis, deps.db, owner, now)),
      keyBreakdown(deps, owner.userId, now),
    ]);
    noteApiKeyUsed(deps.db, owner.keyId);
    return Response.json(
      {
        used: usage.used,
        limit: usage.limit,
        remaining: usage.remaining,
        period: usage.period,
        resetsAt: usage.resetsAt.toISOString(),
        keys,
      },
      { headers: { ...rateLimitHeaders(usage), "Cache-Control": "no-store" } },
    );
  });
}
