import { createHash, randomBytes } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { API_KEY_PREFIX } from "~/utils/api-key-shape";
import type { Db } from "~/utils/db.server";
import { bumpOwnerVersion, ownerVersionKey, ownerVersionOf, queueOwnerVersionBump } from "./owner-version.server";

/**
 * API keys: `sm_live_` + 32 random bytes (base64url, 256 bits). Postgres keeps only the SHA-256 of a key and its
 * first characters; a fast hash is right here because the key is random, not a password someone chose.
 *
 * A key is looked up Redis `apikey:{sha256}` → Postgres. The sheet API keeps what it needs in its own byte-bounded
 * cache, checked against the owner's cache version on every call (app/api/hot-cache.server.ts, docs/caching.md);
 * `resolveApiKey` (for /api/v1/usage) keeps a one-second memory layer, which bounds how long a revoked key keeps
 * working there in another process. Revoking a key or rewriting a user's entries bumps the owner's version.
 */
export { API_KEY_PREFIX, MAX_KEY_NAME_LENGTH } from "~/utils/api-key-shape";
const API_KEY_PATTERN = /^sm_live_[A-Za-z0-9_-]{43}$/;
// "sm_live_" plus six characters: enough to tell a customer's keys apart, far too little to guess the rest.
const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 6;

// Not "quota:…": the usage sync finds counters by that prefix alone.
const CACHE_PREFIX = "apikey:";
const CACHE_TTL_SECONDS = 300;
// Unknown keys are remembered briefly so a client hammering with a wrong key does not reach Postgres each time.
const UNKNOWN_CACHE_TTL_SECONDS = 30;
const MEMORY_TTL_MS = 1_000;
const MEMORY_MAX_ENTRIES = 10_000;
const LAST_USED_WRITE_INTERVAL_MS = 60_000;

/** What the hot path needs to know about a key; cached as JSON under `apikey:{hash}`. */
export type CachedKey =
  | { status: "active"; keyId: string; userId: string; monthlyLimit: number }
  | { status: "revoked"; keyId: string }
  | { status: "unknown" };

export interface ApiKeyOwner {
  keyId: string;
  userId: string;
  monthlyLimit: number;
}

export interface ApiKeySummary {
  id: string;
  name: string;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString("base64url");
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function isWellFormedApiKey(key: string): boolean {
  return API_KEY_PATTERN.test(key);
}

function cacheKey(hash: string): string {
  return CACHE_PREFIX + hash;
}

const memory = new Map<string, { value: CachedKey; expiresAt: number }>();
const lastUsedWrites = new Map<string, number>();

function remember(hash: string, value: CachedKey) {
  // A flood of distinct wrong keys must not grow the map without bound; dropping everything costs a Redis read.
  if (memory.size >= MEMORY_MAX_ENTRIES) memory.clear();
  memory.set(hash, { value, expiresAt: Date.now() + MEMORY_TTL_MS });
}

export async function createApiKey(
  db: Db,
  userId: string,
  name: string,
): Promise<{ key: string; summary: ApiKeySummary }> {
  const key = generateApiKey();
  const summary = await db.apiKey.create({
    data: { userId, name, hash: hashApiKey(key), prefix: key.slice(0, DISPLAY_PREFIX_LENGTH) },
    select: summarySelect,
  });
  return { key, summary };
}

const summarySelect = {
  id: true,
  name: true,
  prefix: true,
  createdAt: true,
  lastUsedAt: true,
  revokedAt: true,
} as const;

/** Active keys first, newest first. */
export async function listApiKeys(db: Db, userId: string): Promise<ApiKeySummary[]> {
  const keys = await db.apiKey.findMany({ where: { userId }, select: summarySelect, orderBy: { createdAt: "desc" } });
  return keys.sort((a, b) => Number(a.revokedAt !== null) - Number(b.revokedAt !== null));
}

/**
 * Revokes one of the user's keys. The cache entry becomes a "revoked" tombstone BEFORE Postgres changes: a
 * concurrent lookup that read the key as active fills the cache with SET NX, so it cannot overwrite the
 * tombstone; and if Redis is unreachable, nothing is revoked and the caller sees the error instead of a key that
 * silently keeps working from the cache. Returns false when the user has no such key.
 */
export async function revokeApiKey(redis: Redis, db: Db, userId: string, keyId: string): Promise<boolean> {
  const key = await db.apiKey.findFirst({ where: { id: keyId, userId }, select: { hash: true, revokedAt: true } });
  if (!key) return false;
  const tombstone: CachedKey = { status: "revoked", keyId };
  await redis.set(cacheKey(key.hash), tombstone, { ex: CACHE_TTL_SECONDS });
  memory.delete(key.hash);
  if (!key.revokedAt) await db.apiKey.update({ where: { id: keyId }, data: { revokedAt: new Date() } });
  // Processes that hold the key in memory learn of the revocation on their next call's quota check.
  await bumpOwnerVersion(redis, userId);
  return true;
}

/**
 * Rewrites the cache entries of all the user's keys from Postgres. Call it after changing a user's monthly
 * limit (or deleting them) so the quota check uses the new limit within a second. Entries are overwritten rather
 * than deleted, so a lookup that read the old limit just before cannot put it back (fills use SET NX).
 */
export async function refreshApiKeyCacheForUser(redis: Redis, db: Db, userId: string): Promise<void> {
  const keys = await db.apiKey.findMany({
    where: { userId },
    select: { id: true, userId: true, hash: true, revokedAt: true, user: { select: { monthlyLimit: true } } },
  });
  const pipeline = redis.pipeline();
  for (const key of keys) {
    pipeline.set(cacheKey(key.hash), entryFor(key), { ex: CACHE_TTL_SECONDS });
    memory.delete(key.hash);
  }
  // Last in the pipeline (Redis runs it in order): a process that sees the new version reads the new entries.
  queueOwnerVersionBump(pipeline, userId);
  await pipeline.exec();
}

/**
 * For account deletion, before Postgres forgets the keys: each key's cache entry becomes "unknown" (what a key
 * nobody ever made gets), written over whatever is there, so a lookup that read the key as active just before
 * cannot put it back (fills use SET NX) while the deletion commits. It lives as long as an unknown key's entry
 * does and names no account. Queued on the caller's pipeline, ahead of its owner-version bump.
 */
export function queueDeletedKeyEntries(pipeline: ReturnType<Redis["pipeline"]>, keys: { id: string; hash: string }[]) {
  const unknown: CachedKey = { status: "unknown" };
  for (const key of keys) {
    pipeline.set(cacheKey(key.hash), unknown, { ex: UNKNOWN_CACHE_TTL_SECONDS });
    memory.delete(key.hash);
    lastUsedWrites.delete(key.id);
  }
}

function entryFor(key: {
  id: string;
  revokedAt: Date | null;
  userId: string;
  user: { monthlyLimit: number };
}): CachedKey {
  if (key.revokedAt) return { status: "revoked", keyId: key.id };
  return { status: "active", keyId: key.id, userId: key.userId, monthlyLimit: key.user.monthlyLimit };
}

async function loadFromDb(db: Db, hash: string): Promise<CachedKey> {
  const key = await db.apiKey.findUnique({
    where: { hash },
    select: { id: true, userId: true, revokedAt: true, user: { select: { monthlyLimit: true } } },
  });
  return key ? entryFor(key) : { status: "unknown" };
}

/** The key's entry from Redis, filled from Postgres (SET NX) when missing. */
export async function readKeyEntry(redis: Redis, db: Db, hash: string): Promise<CachedKey> {
  const value = await redis.get<CachedKey>(cacheKey(hash));
  return value ?? fillKeyEntry(redis, db, hash);
}

async function fillKeyEntry(redis: Redis, db: Db, hash: string): Promise<CachedKey> {
  const value = await loadFromDb(db, hash);
  await redis.set(cacheKey(hash), value, {
    nx: true,
    ex: value.status === "unknown" ? UNKNOWN_CACHE_TTL_SECONDS : CACHE_TTL_SECONDS,
  });
  return value;
}

/**
 * The account's cache version and the key's entry, in ONE round trip and in that order: data read after the
 * version can only be newer than the version says, never older, so a change that lands in between makes the next
 * quota check refuse the entry instead of letting it pass as current (see owner-version.server.ts).
 */
export async function readKeyEntryWithVersion(
  redis: Redis,
  db: Db,
  hash: string,
  userId: string,
): Promise<{ entry: CachedKey; version: string }> {
  const [version, entry] = await redis
    .pipeline()
    .get(ownerVersionKey(userId))
    .get<CachedKey>(cacheKey(hash))
    .exec<[unknown, CachedKey | null]>();
  return { entry: entry ?? (await fillKeyEntry(redis, db, hash)), version: ownerVersionOf(version) };
}

/**
 * The owner of an active key, or null for a malformed, unknown or revoked one. Throws when Redis cannot be
 * reached (the caller fails closed; the quota check would fail anyway).
 */
export async function resolveApiKey(redis: Redis, db: Db, key: string): Promise<ApiKeyOwner | null> {
  if (!isWellFormedApiKey(key)) return null;
  const hash = hashApiKey(key);
  const now = Date.now();

  let entry = memory.get(hash);
  if (!entry || entry.expiresAt <= now) {
    const value = await readKeyEntry(redis, db, hash);
    remember(hash, value);
    entry = memory.get(hash)!;
  }

  const value = entry.value;
  if (value.status !== "active") return null;
  return { keyId: value.keyId, userId: value.userId, monthlyLimit: value.monthlyLimit };
}

/**
 * Records that a key was used, at most once a minute per key and process, without making the caller wait:
 * "last used" is a hint for the customer, not worth a Postgres write on every call.
 */
export function noteApiKeyUsed(db: Db, keyId: string, now: Date = new Date()): void {
  const last = lastUsedWrites.get(keyId) ?? 0;
  if (now.getTime() - last < LAST_USED_WRITE_INTERVAL_MS) return;
  if (lastUsedWrites.size >= MEMORY_MAX_ENTRIES) lastUsedWrites.clear();
  lastUsedWrites.set(keyId, now.getTime());
  db.apiKey.update({ where: { id: keyId }, data: { lastUsedAt: now } }).catch((error: unknown) => {
    console.warn(`Could not record lastUsedAt for key ${keyId}: ${(error as Error).message}`);
  });
}

/** Forgets this process's memory layer; tests use it to observe what Redis and Postgres say. */
export function clearApiKeyMemoryCache(): void {
  memory.clear();
  lastUsedWrites.clear();
}
