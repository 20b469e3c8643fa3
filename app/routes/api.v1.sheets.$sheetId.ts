import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "~/api/problem.server";
import { handleSheetRequest } from "~/api/sheet-request.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";

/** `GET /api/v1/sheets/:sheetId` — see docs/api.md. */
export function loader({ request, params }: LoaderFunctionArgs) {
  return handleSheetRequest({ redis: getRedis(), db: getDb() }, request, params.sheetId ?? "");
}

export function action() {
  return methodNotAllowed(["GET"]);
}
