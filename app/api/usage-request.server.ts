import { noteApiKeyUsed } from "~/models/api-keys.server";
import { listKeyUsage } from "~/models/key-usage.server";
import { getUsage } from "~/models/quota.server";
import { viaQuotaStore } from "~/models/quota-store.server";
import { type ApiDeps, authenticate } from "./api-key-auth.server";
import { withOutageAnswer } from "./quota-store-outage.server";
import { rateLimitHeaders } from "./rate-limit-headers.server";

/**
 * `GET /api/v1/usage`: the key owner's usage this month, and each of their keys' share of it; consumes nothing. The
 * per-key counts fall back to the last sync's when Redis does not answer them; the quota itself never does.
 */
export function handleUsageRequest(deps: ApiDeps, request: Request): Promise<Response> {
  return withOutageAnswer(async () => {
    const owner = await authenticate(deps, request);
    if (owner instanceof Response) return owner;
    const now = new Date();
    const [usage, byKey] = await Promise.all([
      viaQuotaStore(() => getUsage(deps.redis, deps.db, owner, now)),
      listKeyUsage(deps, owner.userId, now),
    ]);
    noteApiKeyUsed(deps.db, owner.keyId);
    return Response.json(
      {
        used: usage.used,
        limit: usage.limit,
        remaining: usage.remaining,
        period: usage.period,
        resetsAt: usage.resetsAt.toISOString(),
        keys: byKey.keys.map((key) => ({ id: key.id, name: key.name, prefix: key.prefix, used: key.used })),
      },
      { headers: { ...rateLimitHeaders(usage), "Cache-Control": "no-store" } },
    );
  });
}
