import type { LoaderFunctionArgs } from "@remix-run/node";
import { methodNotAllowed } from "~/api/problem.server";
import { withRecordedAnswer } from "~/api/answer-record.server";
import { handleUsageRequest } from "~/api/usage-request.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

/** `GET /api/v1/usage` — the key owner's usage this month; consumes nothing. See docs/api.md. */
// Remix hands HEAD and OPTIONS to the loader too; the API promises 405 for anything but GET (see the sheet route).
export const loader = withSecurityHeaders(({ request }: LoaderFunctionArgs) =>
  request.method !== "GET"
    ? methodNotAllowed(["GET"])
    : withRecordedAnswer(request, (deps, note) => handleUsageRequest(deps, request, note)),
);

export const action = withSecurityHeaders(() => methodNotAllowed(["GET"]));
