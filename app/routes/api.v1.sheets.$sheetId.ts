import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "~/api/problem.server";
import { handleSheetRequest } from "~/api/sheet-request.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

/** `GET /api/v1/sheets/:sheetId` — see docs/api.md. */
export const loader = withSecurityHeaders(({ request, params }: LoaderFunctionArgs) =>
  handleSheetRequest({ redis: getRedis(), db: getDb() }, request, params.sheetId ?? ""),
);

export const action = withSecurityHeaders(() => methodNotAllowed(["GET"]));
