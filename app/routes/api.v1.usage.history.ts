import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "~/api/problem.server";
import { withRecordedAnswer } from "~/api/answer-record.server";
import { handleUsageHistoryRequest } from "~/api/usage-history-request.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

/** `GET /api/v1/usage/history` — usage per hour or day as JSON or CSV; consumes nothing. See docs/api.md. */
// Remix hands HEAD and OPTIONS to the loader too; the API promises 405 for anything but GET (see the sheet route).
export const loader = withSecurityHeaders(({ request }: LoaderFunctionArgs) =>
  request.method !== "GET"
    ? methodNotAllowed(["GET"])
    : withRecordedAnswer(request, (deps, note) => handleUsageHistoryRequest(deps, request, new Date(), note)),
);

export const action = withSecurityHeaders(() => methodNotAllowed(["GET"]));
