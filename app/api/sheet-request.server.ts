import { getSheetForQuery } from "~/models/sheets.server";
import { queryRowsMetered } from "~/models/metered-rows.server";
import { type ApiDeps, authenticate } from "./api-key-auth.server";
import { problem } from "./problem.server";
import { withOutageAnswer } from "./quota-store-outage.server";
import { rateLimitHeaders } from "./rate-limit-headers.server";
import { parseSheetQuery } from "./sheet-query.server";

/**
 * `GET /api/v1/sheets/:sheetId`. A bad key (401), an unknown sheet (404) or a bad parameter (400) is answered before
 * the quota is touched; a sheet of another account is "not found", so its existence is not revealed.
 */
export function handleSheetRequest(deps: ApiDeps, request: Request, sheetId: string): Promise<Response> {
  return withOutageAnswer(async () => {
    const owner = await authenticate(deps, request);
    if (owner instanceof Response) return owner;

    const sheet = await getSheetForQuery(deps.db, owner.userId, sheetId);
    if (!sheet) {
      return problem({
        status: 404,
        type: "sheet-not-found",
        title: "Sheet not found",
        detail: `No sheet “${sheetId}” belongs to this API key's account.`,
      });
    }
    const parsed = parseSheetQuery(new URL(request.url).searchParams, sheet.columns);
    if (!parsed.ok) {
      return problem({
        status: 400,
        type: "invalid-parameter",
        title: "Invalid query parameter",
        detail: parsed.detail,
        parameter: parsed.parameter,
      });
    }

    const metered = await queryRowsMetered(deps, owner, sheet, parsed.query);
    if (!metered.allowed) {
      const { quota } = metered;
      return problem(
        {
          status: 429,
          type: "quota-exceeded",
          title: "Monthly quota exceeded",
          detail: `This account has used all ${quota.limit} calls of ${quota.period}. The quota resets at ${quota.resetsAt.toISOString()}.`,
        },
        { ...rateLimitHeaders(quota), "Retry-After": String(quota.resetSeconds) },
      );
    }
    const { rows, total } = metered.rows;
    return Response.json(
      { data: rows, meta: { total, limit: parsed.query.limit, offset: parsed.query.offset } },
      { headers: { ...(metered.quota ? rateLimitHeaders(metered.quota) : {}), "Cache-Control": "no-store" } },
    );
  });
}
