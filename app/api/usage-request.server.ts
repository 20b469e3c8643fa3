import { noteApiKeyUsed } from "~/models/api-keys.server";
import { getUsage } from "~/models/quota.server";
import { viaQuotaStore } from "~/models/quota-store.server";
import { type ApiDeps, authenticate } from "./api-key-auth.server";
import { withOutageAnswer } from "./quota-store-outage.server";
import { rateLimitHeaders } from "./rate-limit-headers.server";

/** `GET /api/v1/usage`: the key owner's usage this month; consumes nothing. */
export function handleUsageRequest(deps: ApiDeps, request: Request): Promise<Response> {
  return withOutageAnswer(async () => {
    const owner = await authenticate(deps, request);
    if (owner instanceof Response) return owner;
    const usage = await viaQuotaStore(() => getUsage(deps.redis, deps.db, owner));
    noteApiKeyUsed(deps.db, owner.keyId);
    return Response.json(
      {
        used: usage.used,
        limit: usage.limit,
        remaining: usage.remaining,
        period: usage.period,
        resetsAt: usage.resetsAt.toISOString(),
      },
      { headers: { ...rateLimitHeaders(usage), "Cache-Control": "no-store" } },
    );
  });
}
