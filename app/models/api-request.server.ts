import type { Redis } from "@upstash/redis";
import { json } from "@remix-run/node";
import type { Db } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { problem } from "~/utils/problem.server";
import { secondsInPeriod } from "~/utils/period";
import { type ApiKeyOwner, noteApiKeyUsed, resolveApiKey } from "./api-keys.server";
import { consumeQuota, getUsage, type QuotaState, refundQuota } from "./quota.server";
import { getSheetForQuery, querySheetRows, type SheetQuery } from "./sheets.server";

/**
 * The consumer API's request handling, kept out of the route modules so tests can hand in their own Redis (a dead
 * one, to check the outage answer) and the route stays a one-liner.
 *
 * What counts: a call consumes one unit only when it returns 200. A bad key (401), an unknown sheet (404) or a
 * bad parameter (400) is answered before the quota is touched; if reading the rows fails after the unit was
 * counted, the unit is refunded. A call over the limit (429) is never counted.
 *
 * Redis unreachable: fail closed. Without the counter nobody can tell whether the owner has quota left, and
 * serving for free during an outage is the more expensive mistake; the caller gets 503 with Retry-After.
 */
export interface ApiDeps {
  redis: Redis;
  db: Db;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
const MAX_OFFSET = 2_147_483_647;
const MAX_SEARCH_LENGTH = 200;
const RESERVED_PARAMS = new Set(["limit", "offset", "sort", "order", "search"]);
const REDIS_RETRY_AFTER_SECONDS = 5;

export type ParsedQuery = { ok: true; query: SheetQuery } | { ok: false; parameter: string; detail: string };

/**
 * Validates the query string against the sheet's columns. Every other parameter name is an exact-match filter and
 * must be one of the columns, as written in the header; anything else is named back in the error.
 */
export function parseSheetQuery(params: URLSearchParams, columns: readonly string[]): ParsedQuery {
  const fail = (parameter: string, detail: string): ParsedQuery => ({ ok: false, parameter, detail });
  const known = new Set(columns);
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) return fail(name, `The parameter “${name}” is given more than once; give it once.`);
    seen.add(name);
  }

  const integer = (name: string, fallback: number, min: number, max: number): number | ParsedQuery => {
    const raw = params.get(name);
    if (raw === null) return fallback;
    // Digits only: "1e3", "0x10", " 5" and "-1" are all refused rather than guessed at.
    if (!/^\d{1,10}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      return fail(name, `“${name}” must be a whole number from ${min} to ${max}, got “${raw}”.`);
    }
    return Number(raw);
  };

  const limit = integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT);
  if (typeof limit !== "number") return limit;
  const offset = integer("offset", 0, 0, MAX_OFFSET);
  if (typeof offset !== "number") return offset;

  let sort: SheetQuery["sort"];
  const sortColumn = params.get("sort");
  const order = params.get("order");
  if (order !== null && order !== "asc" && order !== "desc") {
    return fail("order", `“order” must be “asc” or “desc”, got “${order}”.`);
  }
  if (sortColumn !== null) {
    if (!known.has(sortColumn)) return fail("sort", unknownColumn("sort", sortColumn, columns));
    sort = { column: sortColumn, order: order ?? "asc" };
  } else if (order !== null) {
    return fail("order", "“order” needs “sort=<column>” to say what to order by.");
  }

  const search = params.get("search");
  if (search !== null && (search.trim() === "" || search.length > MAX_SEARCH_LENGTH)) {
    return fail("search", `“search” must be 1 to ${MAX_SEARCH_LENGTH} characters.`);
  }

  const filters: SheetQuery["filters"] = [];
  for (const [name, value] of params) {
    if (RESERVED_PARAMS.has(name)) continue;
    if (!known.has(name)) return fail(name, unknownColumn(name, name, columns));
    filters.push({ column: name, value });
  }
  return { ok: true, query: { limit, offset, sort, filters, search: search ?? undefined } };
}

function unknownColumn(parameter: string, name: string, columns: readonly string[]): string {
  const shown = columns
    .slice(0, 20)
    .map((column) => `“${column}”`)
    .join(", ");
  const more = columns.length > 20 ? `, and ${columns.length - 20} more` : "";
  const what = parameter === "sort" ? "“sort” names" : "The parameter";
  return `${what} “${name}”, which is not a column of this sheet. Columns: ${shown}${more}.`;
}

/** The quota headers of the IETF RateLimit draft, on every metered response. */
export function rateLimitHeaders(state: QuotaState): Record<string, string> {
  return {
    "RateLimit-Limit": String(state.limit),
    "RateLimit-Remaining": String(state.remaining),
    "RateLimit-Reset": String(state.resetSeconds),
    "RateLimit-Policy": `"monthly";q=${state.limit};w=${secondsInPeriod(state.period)}`,
    RateLimit: `"monthly";r=${state.remaining};t=${state.resetSeconds}`,
  };
}

function unauthorized(detail: string): Response {
  return problem(
    { status: 401, type: "invalid-api-key", title: "Missing or invalid API key", detail },
    { "WWW-Authenticate": 'Bearer realm="sheetmeter"' },
  );
}

function redisUnavailable(error: unknown): Response {
  console.error(`Quota store unreachable, refusing API call: ${(error as Error).message}`);
  return problem(
    {
      status: 503,
      type: "quota-store-unavailable",
      title: "Quota check unavailable",
      detail: "Usage cannot be checked right now, so the call was not served and not counted. Try again shortly.",
    },
    { "Retry-After": String(REDIS_RETRY_AFTER_SECONDS) },
  );
}

/** Marks failures of Redis calls so the outage answer is not confused with a Postgres failure. */
class RedisUnavailable extends Error {
  constructor(readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}

async function viaRedis<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw new RedisUnavailable(error);
  }
}

/**
 * Bench-only switch: skips the quota check so `bench/api.ts` can measure what it costs. It needs NODE_ENV other
 * than "production" (read at run time; the build inlines `process.env.NODE_ENV` itself as "production") AND an
 * explicit flag, so a production deployment cannot turn it on by setting one variable.
 */
export function isQuotaBypassed(): boolean {
  return getEnv().NODE_ENV !== "production" && process.env.SHEETMETER_BENCH_UNMETERED === "1";
}

async function authenticate({ redis, db }: ApiDeps, request: Request): Promise<ApiKeyOwner | Response> {
  const header = request.headers.get("Authorization");
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  if (!match) return unauthorized("Send your API key as “Authorization: Bearer sm_live_…”.");
  const owner = await viaRedis(() => resolveApiKey(redis, db, match[1]));
  if (!owner) return unauthorized("This API key is not valid or has been revoked. Create a key at /keys.");
  return owner;
}

async function withOutageAnswer(handle: () => Promise<Response>): Promise<Response> {
  try {
    return await handle();
  } catch (error) {
    if (error instanceof RedisUnavailable) return redisUnavailable(error.cause);
    throw error;
  }
}

/** `GET /api/v1/sheets/:sheetId`. */
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

    if (isQuotaBypassed()) {
      const result = await querySheetRows(deps.db, sheet, parsed.query);
      noteApiKeyUsed(deps.db, owner.keyId);
      return rowsResponse(result, parsed.query);
    }

    // The quota check (Redis) and the rows query (Postgres) run side by side, so a call waits for the slower of
    // the two instead of their sum. Rows read for a call that turns out to be over quota are thrown away; once an
    // owner has been refused, their next calls for a second check first, so a client that keeps calling past its
    // quota does not keep Postgres busy.
    const overlap = !recentlyRefused(owner.userId);
    const rowsQuery = overlap ? querySheetRows(deps.db, sheet, parsed.query) : undefined;
    // Settled at once so a rows failure is never an unhandled rejection while the quota answer is awaited.
    const rowsSettled = rowsQuery?.then(
      (rows) => ({ ok: true as const, rows }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    const quota = await viaRedis(() => consumeQuota(deps.redis, deps.db, owner));
    if (!quota.allowed) {
      noteRefused(owner.userId);
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

    const rows = rowsSettled
      ? await rowsSettled
      : await querySheetRows(deps.db, sheet, parsed.query).then(
          (result) => ({ ok: true as const, rows: result }),
          (error: unknown) => ({ ok: false as const, error }),
        );
    if (!rows.ok) {
      // Only successful calls count: give the unit back. If Redis fails too, the error that matters is the first.
      await refundQuota(deps.redis, owner.userId, quota.period).catch(() => undefined);
      throw rows.error;
    }
    noteApiKeyUsed(deps.db, owner.keyId);
    return rowsResponse(rows.rows, parsed.query, quota);
  });
}

function rowsResponse(result: { rows: unknown[]; total: number }, query: SheetQuery, quota?: QuotaState): Response {
  return json(
    { data: result.rows, meta: { total: result.total, limit: query.limit, offset: query.offset } },
    { headers: { ...(quota ? rateLimitHeaders(quota) : {}), "Cache-Control": "no-store" } },
  );
}

const REFUSED_MEMORY_MS = 1_000;
const refusedUntil = new Map<string, number>();

function noteRefused(userId: string) {
  if (refusedUntil.size >= 10_000) refusedUntil.clear();
  refusedUntil.set(userId, Date.now() + REFUSED_MEMORY_MS);
}

function recentlyRefused(userId: string): boolean {
  const until = refusedUntil.get(userId);
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  refusedUntil.delete(userId);
  return false;
}

/** `GET /api/v1/usage`: the key owner's usage this month; consumes nothing. */
export function handleUsageRequest(deps: ApiDeps, request: Request): Promise<Response> {
  return withOutageAnswer(async () => {
    const owner = await authenticate(deps, request);
    if (owner instanceof Response) return owner;
    const usage = await viaRedis(() => getUsage(deps.redis, deps.db, owner));
    noteApiKeyUsed(deps.db, owner.keyId);
    return json(
      {
        used: usage.used,
        limit: usage.limit,
        remaining: usage.remaining,
        period: usage.period,
        resetsAt: usage.resetsAt.toISOString(),
      },
      { headers: { ...rateLimitHeaders(usage), "Cache-Control": "no-store" } },
    );
  });
}
