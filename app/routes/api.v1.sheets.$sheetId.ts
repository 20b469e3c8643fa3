import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "~/api/problem.server";
import { recordedSheetRequest } from "~/api/answer-record.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

/** `GET /api/v1/sheets/:sheetId` — see docs/api.md. */
// Remix hands HEAD and OPTIONS to the loader too: answered there, they would be metered like a GET (and OPTIONS
// would carry the rows). The API promises 405 for anything but GET.
export const loader = withSecurityHeaders(({ request, params }: LoaderFunctionArgs) =>
  request.method !== "GET"
    ? methodNotAllowed(["GET"])
    : recordedSheetRequest({ redis: getRedis(), db: getDb() }, request, params.sheetId ?? ""),
);

export const action = withSecurityHeaders(() => methodNotAllowed(["GET"]));
