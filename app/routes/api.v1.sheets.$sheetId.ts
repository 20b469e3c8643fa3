import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "~/api/problem.server";
import { handleSheetRequest } from "~/api/sheet-request.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";

/** `GET /api/v1/sheets/:sheetId` — see docs/api.md. */
export function loader({ request, params }: LoaderFunctionArgs) {
  // Remix hands HEAD and OPTIONS to the loader too: answered here, they would be metered like a GET (and OPTIONS
  // would carry the rows). The API promises 405 for anything but GET.
  if (request.method !== "GET") return methodNotAllowed(["GET"]);
  return handleSheetRequest({ redis: getRedis(), db: getDb() }, request, params.sheetId ?? "");
}

export function action() {
  return methodNotAllowed(["GET"]);
}
