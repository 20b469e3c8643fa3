import { LRUCache } from "lru-cache";
import type { SheetForQuery } from "~/models/sheets.server";

/**
 * The API's in-process caches (docs/caching.md). Each is an LRU bounded by bytes, not entries, so a flood of
 * distinct keys, sheets with hundreds of columns or pages of a thousand wide rows cannot grow the process past
 * its budget; least recently used entries go first. Sizes are estimates of the heap an entry holds (UTF-16 strings
 * count two bytes a character, plus a fixed overhead per entry), which is what the bound is about.
 *
 * Nothing here is trusted on its own: owner and sheet entries carry the owner's cache version they were read
 * under, and every metered call checks it in the quota script (owner-version.server.ts). Pages are keyed by the
 * sheet's version, so they never need invalidating: a changed sheet simply stops asking for the old keys.
 */

/** What a call needs to know about its key: who owns it, their limit, and the version that was read with them. */
export interface CachedOwner {
  keyId: string;
  userId: string;
  monthlyLimit: number;
  /** The owner's cache version (Redis) read before this entry's data. */
  version: string;
}

/** A sheet as looked up for an owner; null is "no such sheet for this owner" (a 404), remembered briefly. */
export interface CachedSheet {
  sheet: SheetForQuery | null;
  ownerVersion: string;
}

/** A page's response body, serialised once, and its ETag. */
export interface CachedPage {
  body: Uint8Array<ArrayBuffer>;
  etag: string;
}

const ENTRY_OVERHEAD_BYTES = 200;
const stringBytes = (text: string) => text.length * 2;

export const OWNER_CACHE_MAX_BYTES = 4 * 1024 * 1024;
export const SHEET_CACHE_MAX_BYTES = 16 * 1024 * 1024;
export const PAGE_CACHE_MAX_BYTES = 64 * 1024 * 1024;
// A page larger than this (1 000 wide rows) is served but not kept: one of them would evict hundreds of others.
export const PAGE_MAX_ENTRY_BYTES = 4 * 1024 * 1024;

// Entries the version check covers live up to a minute anyway: a backstop for a bump that never reached Redis
// (the process that made the change lost Redis in between), and bounded staleness for the unmetered bench mode.
export const VERIFIED_TTL_MS = 60_000;
// Refusals (unknown or revoked key, no such sheet) cannot be checked by the quota script — they never reach it —
// so they are remembered for at most a second; a key or sheet cannot come back from either state anyway.
export const REFUSAL_TTL_MS = 1_000;

const REFUSED = "refused" as const;

const owners = new LRUCache<string, CachedOwner | typeof REFUSED>({
  maxSize: OWNER_CACHE_MAX_BYTES,
  sizeCalculation: (owner, hash) =>
    ENTRY_OVERHEAD_BYTES +
    stringBytes(hash) +
    (owner === REFUSED ? 0 : stringBytes(owner.keyId) + stringBytes(owner.userId) + stringBytes(owner.version)),
  ttl: VERIFIED_TTL_MS,
});

const sheets = new LRUCache<string, CachedSheet>({
  maxSize: SHEET_CACHE_MAX_BYTES,
  sizeCalculation: ({ sheet, ownerVersion }, key) =>
    ENTRY_OVERHEAD_BYTES +
    stringBytes(key) +
    stringBytes(ownerVersion) +
    (sheet ? stringBytes(sheet.id) + sheet.columns.reduce((sum, column) => sum + 50 + stringBytes(column), 0) : 0),
  ttl: VERIFIED_TTL_MS,
});

const pages = new LRUCache<string, CachedPage>({
  maxSize: PAGE_CACHE_MAX_BYTES,
  maxEntrySize: PAGE_MAX_ENTRY_BYTES,
  sizeCalculation: (page, key) =>
    ENTRY_OVERHEAD_BYTES + stringBytes(key) + stringBytes(page.etag) + page.body.byteLength,
});

/** A cached owner, REFUSED for a key known to be unknown or revoked, or undefined when nothing is cached. */
export function cachedOwner(hash: string): CachedOwner | typeof REFUSED | undefined {
  return owners.get(hash);
}

export function rememberOwner(hash: string, owner: CachedOwner | null): void {
  if (owner) owners.set(hash, owner);
  else owners.set(hash, REFUSED, { ttl: REFUSAL_TTL_MS });
}

export function forgetOwner(hash: string): void {
  owners.delete(hash);
}

export { REFUSED as REFUSED_KEY };

const sheetCacheKey = (userId: string, sheetId: string) => `${userId}/${sheetId}`;

/** The cached lookup of `sheetId` for this owner, if it was made under the owner's current version. */
export function cachedSheet(owner: CachedOwner, sheetId: string): CachedSheet | undefined {
  const hit = sheets.get(sheetCacheKey(owner.userId, sheetId));
  return hit && hit.ownerVersion === owner.version ? hit : undefined;
}

export function rememberSheet(owner: CachedOwner, sheetId: string, sheet: SheetForQuery | null): void {
  sheets.set(
    sheetCacheKey(owner.userId, sheetId),
    { sheet, ownerVersion: owner.version },
    sheet ? undefined : { ttl: REFUSAL_TTL_MS },
  );
}

export function cachedPage(pageKey: string): CachedPage | undefined {
  return pages.get(pageKey);
}

// Concurrent misses of one page share one query: the first call reads it, the others wait for that answer.
const pagesLoading = new Map<string, Promise<CachedPage>>();

/** The page from the cache, or loaded once however many calls ask for it at the same time. */
export function loadPageOnce(pageKey: string, load: () => Promise<CachedPage>): Promise<CachedPage> {
  const hit = pages.get(pageKey);
  if (hit) return Promise.resolve(hit);
  let loading = pagesLoading.get(pageKey);
  if (!loading) {
    loading = load().then(
      (page) => {
        pagesLoading.delete(pageKey);
        pages.set(pageKey, page);
        return page;
      },
      (error: unknown) => {
        pagesLoading.delete(pageKey);
        throw error;
      },
    );
    pagesLoading.set(pageKey, loading);
  }
  return loading;
}

/**
 * Drops what this process holds about a deleted account: its keys, its sheet lookups and its sheets' pages. Other
 * processes learn of the deletion from the owner-version bump; this one also stops holding the rows in memory.
 */
export function forgetAccount(account: { userId: string; keyHashes: string[]; sheetIds: string[] }): void {
  for (const hash of account.keyHashes) owners.delete(hash);
  const sheetPrefix = `${account.userId}/`;
  for (const key of [...sheets.keys()]) if (key.startsWith(sheetPrefix)) sheets.delete(key);
  // Page keys are JSON arrays that start with the sheet id (entity-tag.server.ts).
  const pagePrefixes = account.sheetIds.map((sheetId) => `${JSON.stringify([sheetId]).slice(0, -1)},`);
  if (pagePrefixes.length === 0) return;
  for (const key of [...pages.keys()]) {
    if (pagePrefixes.some((prefix) => key.startsWith(prefix))) pages.delete(key);
  }
}

/** What the caches hold, for tests and benches. */
export function hotCacheStats() {
  return {
    owners: { entries: owners.size, bytes: owners.calculatedSize },
    sheets: { entries: sheets.size, bytes: sheets.calculatedSize },
    pages: { entries: pages.size, bytes: pages.calculatedSize },
  };
}

/** Empties every cache of this process; tests use it to make the next call go to Redis and Postgres. */
export function clearHotCaches(): void {
  owners.clear();
  sheets.clear();
  pages.clear();
  pagesLoading.clear();
}
