import { meterCall } from "~/models/metered-rows.server";
import { QuotaStoreUnavailableError } from "~/models/quota-store.server";
import { querySheetRows } from "~/models/sheets.server";
import type { Db } from "~/utils/db.server";
import { type ApiDeps, bearerToken, missingKey, unauthorized } from "./api-key-auth.server";
import { ifNoneMatchHits } from "./entity-tag.server";
import { type CachedPage, loadPageOnce } from "./hot-cache.server";
import { problem } from "./problem.server";
import { withOutageAnswer } from "./quota-store-outage.server";
import { rateLimitHeaders } from "./rate-limit-headers.server";
import { prepareSheetCall, type Refusal, reloadSheetCall, type SheetCall } from "./sheet-call.server";

/**
 * All `handleSheetRequest` reads of a request: a `Request` will do, and so will a server's own small object, so a
 * custom server can call it before (and without) the framework.
 */
export interface SheetRequest {
  /** The absolute URL or the path with its query string; only the query string is read. */
  url: string;
  headers: { get(name: string): string | null };
}

// A client may keep the page (private: never a shared cache, the answer depends on the key) but must ask again
// before each use (no-cache), so every use is authorised and metered, and a revoked key stops working at once.
// no-store would forbid keeping the body, and with it the If-None-Match revalidation that makes a 304 possible.
const PAGE_CACHE_CONTROL = "private, no-cache";
// A page differs by key only in its quota headers, but a browser must not answer one key's request from another's.
const PAGE_VARY = "Authorization";
// Consecutive "your cached data is stale" answers a call accepts before giving up with a 503: each means the
// account changed (a key revoked, a limit set, a sheet deleted) between our reload and our quota check.
const MAX_STALE_RELOADS = 3;

function searchOf(url: string): string {
  const start = url.indexOf("?");
  if (start === -1) return "";
  const end = url.indexOf("#", start);
  return end === -1 ? url.slice(start + 1) : url.slice(start + 1, end);
}

function refusal(refused: Refusal, sheetId: string): Response {
  if (refused.refused === "key") {
    return unauthorized("This API key is not valid or has been revoked. Create a key at /keys.");
  }
  if (refused.refused === "sheet") {
    return problem({
      status: 404,
      type: "sheet-not-found",
      title: "Sheet not found",
      detail: `No sheet “${sheetId}” belongs to this API key's account.`,
    });
  }
  return problem({
    status: 400,
    type: "invalid-parameter",
    title: "Invalid query parameter",
    detail: refused.parsed.detail,
    parameter: refused.parsed.parameter,
  });
}

const utf8 = new TextEncoder();

/** Reads the page and serialises it once; what is cached is the body's bytes. */
async function readPage(db: Db, call: SheetCall): Promise<CachedPage> {
  const { rows, total } = await querySheetRows(db, call.sheet, call.query);
  // The version the rows were read under (they are stored per version), so `meta` always describes these rows.
  const meta = {
    total,
    limit: call.query.limit,
    offset: call.query.offset,
    version: call.sheet.version,
    updatedAt: call.sheet.dataUpdatedAt.toISOString(),
  };
  const json = JSON.stringify({ data: rows, meta });
  // Its own ArrayBuffer (Buffer.from may hand out a slice of a shared 8 KB slab, which the cache would then pin).
  return { body: utf8.encode(json), etag: call.etag };
}

/**
 * What `handleSheetRequest` learnt that its answer's record needs (request-outcomes.server.ts): whose call it was,
 * and whether the quota script already tallied the answer.
 */
export interface AnswerNote {
  userId?: string;
  tallied?: boolean;
}

/**
 * `GET /api/v1/sheets/:sheetId`. A bad key (401), an unknown sheet (404) or a bad parameter (400) is answered before
 * the quota is touched; a sheet of another account is "not found", so its existence is not revealed. A page is
 * served from this process's cache when it holds it (docs/caching.md); a matching `If-None-Match` is answered 304,
 * which counts like a 200. Over quota, 429 wins over both.
 */
export function handleSheetRequest(
  deps: ApiDeps,
  request: SheetRequest,
  sheetId: string,
  note: AnswerNote = {},
): Promise<Response> {
  return withOutageAnswer(async () => {
    const token = bearerToken(request.headers);
    if (!token) return missingKey();
    const search = searchOf(request.url);
    const ifNoneMatch = request.headers.get("If-None-Match");

    let call = await prepareSheetCall(deps, token, sheetId, search);
    for (let reloads = 0; ; reloads++) {
      if ("refused" in call) {
        if ("owner" in call) note.userId = call.owner.userId;
        return refusal(call, sheetId);
      }
      const current = call;
      note.userId = current.owner.userId;
      const notModified = ifNoneMatch !== null && ifNoneMatchHits(ifNoneMatch, current.etag);
      // A 304 needs no rows at all: the tag is known from the sheet's version and the query alone. The status rides
      // with the quota script, which tallies the answer in the same run.
      const owner = { ...current.owner, servedStatus: notModified ? (304 as const) : (200 as const) };
      const metered = await meterCall(deps, owner, () =>
        notModified ? Promise.resolve(undefined) : loadPageOnce(current.pageKey, () => readPage(deps.db, current)),
      );

      if (metered.outcome === "stale") {
        if (reloads >= MAX_STALE_RELOADS) {
          throw new QuotaStoreUnavailableError(new Error("the account kept changing while the call was checked"));
        }
        call = await reloadSheetCall(deps, current, sheetId, search);
        continue;
      }
      if (metered.outcome === "refused") {
        note.tallied = true;
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

      // Without a quota the check was bypassed (bench only), and nothing tallied the answer.
      note.tallied = metered.quota !== undefined;
      const headers = new Headers(metered.quota ? rateLimitHeaders(metered.quota) : undefined);
      headers.set("ETag", current.etag);
      headers.set("Cache-Control", PAGE_CACHE_CONTROL);
      headers.set("Vary", PAGE_VARY);
      if (!metered.value) return new Response(null, { status: 304, headers });
      headers.set("Content-Type", "application/json");
      return new Response(metered.value.body, { status: 200, headers });
    }
  });
}
