import type { LoaderFunctionArgs } from "@remix-run/node";
import { getUsage } from "~/models/quota.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { getOptionalUser } from "~/auth/session-user.server";
import { liveUsageFrom } from "~/dashboard/live-usage.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

/**
 * GET /dashboard/live: the signed-in customer's live count, polled by the dashboard every few seconds. Reads
 * only; it consumes no quota. Answers JSON in every case (401 rather than a redirect to /login, 503 when Redis is
 * down) because a script, not a person, reads it.
 */
const noStore = { "Cache-Control": "private, no-store" };

export const loader = withSecurityHeaders(async ({ request }: LoaderFunctionArgs) => {
  const user = await getOptionalUser(request).catch((error: unknown) => {
    console.error("dashboard live: user lookup failed:", error);
    return undefined;
  });
  if (user === undefined) {
    return Response.json({ error: "Live usage is unavailable right now." }, { status: 503, headers: noStore });
  }
  if (!user) {
    return Response.json({ error: "Your session has ended; log in again." }, { status: 401, headers: noStore });
  }
  const now = new Date();
  try {
    const usage = await getUsage(getRedis(), getDb(), { userId: user.id, monthlyLimit: user.monthlyLimit }, now);
    return Response.json(liveUsageFrom(usage, now), { headers: noStore });
  } catch (error) {
    console.error("dashboard live: reading usage failed:", error);
    return Response.json({ error: "Live usage is unavailable right now." }, { status: 503, headers: noStore });
  }
});
