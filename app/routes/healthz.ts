import { checkHealth } from "~/models/health.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

export const loader = withSecurityHeaders(async () => {
  const health = await checkHealth(getDb(), getRedis());
  return Response.json(
    { status: health.ok ? "ok" : "degraded", postgres: health.postgres, redis: health.redis },
    { status: health.ok ? 200 : 503, headers: { "Cache-Control": "no-store" } },
  );
});
