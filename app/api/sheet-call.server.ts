import { LRUCache } from "lru-cache";
import { hashApiKey, isWellFormedApiKey, readKeyEntry, readKeyEntryWithVersion } from "~/models/api-keys.server";
import { viaQuotaStore } from "~/models/quota-store.server";
import { getSheetForQuery, type SheetForQuery, type SheetQuery } from "~/models/sheets.server";
import type { ApiDeps } from "./api-key-auth.server";
import { entityTagFor, pageCacheKey } from "./entity-tag.server";
import {
  type CachedOwner,
  cachedOwner,
  cachedSheet,
  forgetOwner,
  REFUSED_KEY,
  rememberOwner,
  rememberSheet,
} from "./hot-cache.server";
import { type ParsedQuery, parseSheetQuery } from "./sheet-query.server";

/**
 * What one call of `GET /api/v1/sheets/:sheetId` needs before the quota is touched — the key's owner, the sheet, the
 * validated query, the page's cache key and ETag — from this process's caches when they have it, else from Redis
 * and Postgres. Each refusal (bad key, no such sheet, bad parameter) is decided here, before the quota check.
 */
export type SheetCall = { owner: CachedOwner; sheet: SheetForQuery; query: SheetQuery; pageKey: string; etag: string };

// A sheet or parameter refusal names the key's owner, whose request log and tallies it goes to.
export type Refusal =
  | { refused: "key" }
  | { refused: "sheet"; owner: CachedOwner }
  | { refused: "parameter"; owner: CachedOwner; parsed: Extract<ParsedQuery, { ok: false }> };

/**
 * The owner of `token`: cached, or looked up. A key not cached is read once to learn its owner, then read again
 * together with the owner's cache version (version first): only the second read is cached, so a change that lands
 * between the two cannot be cached as current.
 */
async function ownerOf(deps: ApiDeps, token: string): Promise<{ hash: string; owner: CachedOwner | null }> {
  if (!isWellFormedApiKey(token)) return { hash: "", owner: null };
  const hash = hashApiKey(token);
  const hit = cachedOwner(hash);
  if (hit === REFUSED_KEY) return { hash, owner: null };
  if (hit) return { hash, owner: hit };
  const entry = await viaQuotaStore(() => readKeyEntry(deps.redis, deps.db, hash));
  if (entry.status !== "active") {
    rememberOwner(hash, null);
    return { hash, owner: null };
  }
  return { hash, owner: await reloadOwner(deps, hash, entry.userId) };
}

async function reloadOwner(deps: ApiDeps, hash: string, userId: string): Promise<CachedOwner | null> {
  const { entry, version } = await viaQuotaStore(() => readKeyEntryWithVersion(deps.redis, deps.db, hash, userId));
  const owner =
    entry.status === "active" && entry.userId === userId
      ? { keyId: entry.keyId, userId, monthlyLimit: entry.monthlyLimit, version }
      : null;
  rememberOwner(hash, owner);
  return owner;
}

/** The sheet for this owner, cached under the owner's version; null when it is not theirs or does not exist. */
async function sheetOf(deps: ApiDeps, owner: CachedOwner, sheetId: string): Promise<SheetForQuery | null> {
  const hit = cachedSheet(owner, sheetId);
  if (hit) return hit.sheet;
  const sheet = await getSheetForQuery(deps.db, owner.userId, sheetId);
  rememberSheet(owner, sheetId, sheet);
  return sheet;
}

function callFor(
  owner: CachedOwner,
  sheet: SheetForQuery,
  search: string,
): SheetCall | Extract<Refusal, { refused: "parameter" }> {
  const parsed = parseSheetQuery(new URLSearchParams(search), sheet.columns);
  if (!parsed.ok) return { refused: "parameter", owner, parsed };
  const pageKey = pageCacheKey(sheet, parsed.query);
  return { owner, sheet, query: parsed.query, pageKey, etag: entityTagFor(pageKey) };
}

// Sheet versions Postgres confirmed within the last second: refusals (unmetered) cost at most one lookup a second
// per sheet, and a replacement made in another process is still seen within that second.
const recentlyConfirmed = new LRUCache<string, true>({ max: 10_000, ttl: 1000 });

/**
 * A parameter refusal decided against this process's copy of the sheet, confirmed against Postgres, where a sheet's
 * columns and version live: the parameters are checked before the quota script would notice that a replacement
 * changed the columns, and a new column must not be refused by a process that has not heard of it yet. Postgres, not
 * the owner's version in Redis, so that a refusal stays quick while Redis hangs; only refusals pay the lookup.
 */
async function confirmParameterRefusal(
  deps: ApiDeps,
  refusal: Extract<Refusal, { refused: "parameter" }>,
  cached: SheetForQuery,
  search: string,
): Promise<SheetCall | Refusal> {
  const { owner } = refusal;
  const confirmedKey = `${cached.id}:${cached.version}`;
  if (recentlyConfirmed.has(confirmedKey)) return refusal;
  const current = await getSheetForQuery(deps.db, owner.userId, cached.id);
  if (current?.version === cached.version) {
    recentlyConfirmed.set(confirmedKey, true);
    return refusal;
  }
  // Cached under the owner's older version: the quota script will find that version stale and reload everything.
  rememberSheet(owner, cached.id, current);
  if (!current) return { refused: "sheet", owner };
  return callFor(owner, current, search);
}

/** Everything the call needs, or what it is refused for. `search` is the query string without its "?". */
export async function prepareSheetCall(
  deps: ApiDeps,
  token: string,
  sheetId: string,
  search: string,
): Promise<(SheetCall & { hash: string }) | Refusal> {
  const { hash, owner } = await ownerOf(deps, token);
  if (!owner) return { refused: "key" };
  const sheet = await sheetOf(deps, owner, sheetId);
  if (!sheet) return { refused: "sheet", owner };
  const call = callFor(owner, sheet, search);
  const confirmed = "refused" in call ? await confirmParameterRefusal(deps, call, sheet, search) : call;
  return "refused" in confirmed ? confirmed : { ...confirmed, hash };
}

/**
 * After the quota script found the owner's cache version changed: drops what this process cached about the key
 * and reads it, and the sheet, again. The answer may now be a refusal (the key was revoked, the sheet deleted).
 */
export async function reloadSheetCall(
  deps: ApiDeps,
  stale: SheetCall & { hash: string },
  sheetId: string,
  search: string,
): Promise<(SheetCall & { hash: string }) | Refusal> {
  return reloadOwnerAndSheet(deps, stale.hash, stale.owner.userId, sheetId, search);
}

async function reloadOwnerAndSheet(
  deps: ApiDeps,
  hash: string,
  userId: string,
  sheetId: string,
  search: string,
): Promise<(SheetCall & { hash: string }) | Refusal> {
  forgetOwner(hash);
  const owner = await reloadOwner(deps, hash, userId);
  if (!owner) return { refused: "key" };
  const sheet = await sheetOf(deps, owner, sheetId);
  if (!sheet) return { refused: "sheet", owner };
  const call = callFor(owner, sheet, search);
  return "refused" in call ? call : { ...call, hash };
}
