import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "~/api/problem.server";
import { handleUsageRequest } from "~/api/usage-request.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";

/** `GET /api/v1/usage` — the key owner's usage this month; consumes nothing. See docs/api.md. */
export function loader({ request }: LoaderFunctionArgs) {
  // Remix hands HEAD and OPTIONS to the loader too: answered here, they would be metered like a GET (and OPTIONS
  // would carry the rows). The API promises 405 for anything but GET.
  if (request.method !== "GET") return methodNotAllowed(["GET"]);
  return handleUsageRequest({ redis: getRedis(), db: getDb() }, request);
}

export function action() {
  return methodNotAllowed(["GET"]);
}
