import { checkHealth, type DependencyState } from "~/models/health.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

/**
 * `GET /healthz` — for load balancers and status pages, so public: it says which part is down, never why. Driver
 * messages name hosts, ports, users and versions, which help an attacker more than a probe; they go to the log.
 */
export const loader = withSecurityHeaders(async () => {
  const health = await checkHealth(getDb(), getRedis());
  const parts = { postgres: health.postgres, redis: health.redis };
  const down = Object.entries(parts)
    .filter(([, state]) => !state.ok)
    .map(([name]) => name);
  if (down.length > 0) {
    const reasons = Object.fromEntries(Object.entries(parts).map(([name, state]) => [name, reasonOf(state)]));
    console.error(JSON.stringify({ event: "health.down", down, ...reasons }));
  }
  return Response.json(
    {
      status: health.ok ? "ok" : "degraded",
      down,
      postgres: publicState(health.postgres),
      redis: publicState(health.redis),
    },
    { status: health.ok ? 200 : 503, headers: { "Cache-Control": "no-store" } },
  );
});

function publicState(state: DependencyState) {
  return state.ok ? state : { ok: false };
}

function reasonOf(state: DependencyState) {
  return state.ok ? "up" : state.error;
}
