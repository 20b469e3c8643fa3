import { admitHistoryExport, HISTORY_EXPORT_WINDOW_SECONDS, MAX_HISTORY_EXPORTS } from "~/models/action-limits.server";
import { noteApiKeyUsed } from "~/models/api-keys.server";
import { viaQuotaStore } from "~/models/quota-store.server";
import {
  getUsageBuckets,
  parseHistoryRange,
  usageExportCsv,
  usageExportFilename,
  usageExportRows,
  type HistoryRange,
} from "~/models/usage-buckets.server";
import { type ApiDeps, authenticate } from "./api-key-auth.server";
import type { AnswerNote } from "./sheet-request.server";
import { problem } from "./problem.server";
import { withOutageAnswer } from "./quota-store-outage.server";

const PARAMETERS = new Set(["from", "to", "granularity", "format"]);

type ParsedExportQuery =
  { ok: true; range: HistoryRange; format: "json" | "csv" } | { ok: false; parameter: string; detail: string };

/** Same rules as the sheet query: every parameter once, no unknown names, each value checked before any read. */
export function parseUsageHistoryQuery(params: URLSearchParams, now: Date): ParsedExportQuery {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) {
      return { ok: false, parameter: name, detail: `The parameter “${name}” is given more than once; give it once.` };
    }
    seen.add(name);
    if (!PARAMETERS.has(name)) {
      return {
        ok: false,
        parameter: name,
        detail: `Unknown parameter “${name}”. This endpoint takes “from”, “to”, “granularity” and “format”.`,
      };
    }
  }
  const format = params.get("format") ?? "json";
  if (format !== "json" && format !== "csv") {
    return {
      ok: false,
      parameter: "format",
      detail: `“format” must be “json” or “csv”, got “${format.slice(0, 40)}”.`,
    };
  }
  const parsed = parseHistoryRange(
    { from: params.get("from"), to: params.get("to"), granularity: params.get("granularity") },
    now,
  );
  return parsed.ok ? { ok: true, range: parsed.range, format } : parsed;
}

/**
 * `GET /api/v1/usage/history`: the key owner's usage per hour or day, as JSON or CSV. Not metered: reading what
 * was used must never use more. A bad key is refused first, so parameter errors reveal nothing to strangers.
 */
export function handleUsageHistoryRequest(
  deps: ApiDeps,
  request: Request,
  now = new Date(),
  note: AnswerNote = {},
): Promise<Response> {
  return withOutageAnswer(async () => {
    const owner = await authenticate(deps, request);
    if (owner instanceof Response) return owner;
    note.userId = owner.userId;
    const parsed = parseUsageHistoryQuery(new URL(request.url).searchParams, now);
    if (!parsed.ok) {
      return problem({
        status: 400,
        type: "invalid-parameter",
        title: "Invalid query parameter",
        detail: parsed.detail,
        parameter: parsed.parameter,
      });
    }
    // Unmetered, so not bounded by the quota: a per-key limit keeps a loop (or a leaked key) from turning exports
    // into unbounded Postgres work. Counted after the query is known to be valid: a refused one cost nothing.
    const admission = await viaQuotaStore(() => admitHistoryExport(deps.redis, owner.userId, owner.keyId));
    if (!admission.admitted) {
      return problem(
        {
          status: 429,
          type: "export-rate-limited",
          title: "Too many exports",
          detail: `This key may export usage history ${MAX_HISTORY_EXPORTS} times per ${HISTORY_EXPORT_WINDOW_SECONDS} seconds; try again in ${admission.retryAfterSeconds} s.`,
        },
        { "Retry-After": String(admission.retryAfterSeconds), "Cache-Control": "no-store" },
      );
    }
    const { range, format } = parsed;
    const buckets = await getUsageBuckets(deps.db, owner.userId, range);
    noteApiKeyUsed(deps.db, owner.keyId);
    if (format === "csv") {
      return new Response(usageExportCsv(buckets, range.granularity), {
        headers: {
          "Content-Type": "text/csv; charset=utf-8; header=present",
          "Content-Disposition": `attachment; filename="${usageExportFilename(range)}"`,
          "Cache-Control": "no-store",
        },
      });
    }
    return Response.json(
      {
        data: usageExportRows(buckets, range.granularity),
        meta: { from: range.from.toISOString(), to: range.to.toISOString(), granularity: range.granularity },
      },
      { headers: { "Cache-Control": "no-store" } },
    );
  });
}
