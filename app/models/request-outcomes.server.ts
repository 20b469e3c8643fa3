import { randomUUID } from "node:crypto";
import { withDeadline } from "~/utils/deadline.server";
import { hashEntries } from "~/utils/redis.server";
import type { Redis } from "@upstash/redis";
import { LRUCache } from "lru-cache";
import type { Db } from "~/utils/db.server";
import { HOUR_MS, hourBucket } from "~/utils/period";
import { REQUEST_LOG_LENGTH } from "~/utils/request-log";
import { API_KEY_PREFIX } from "./api-keys.server";

/**
 * What became of each consumer API call (docs/outcomes.md): a tally per account, UTC hour and HTTP status, and the
 * account's last 100 requests.
 *
 * Redis holds both, bounded: `outcomes:{userId}:{YYYY-MM-DDTHH}` is a hash (field = status) that expires a day after
 * its hour, and `requestlog:{userId}` a list trimmed to REQUEST_LOG_LENGTH on every push that expires a week after
 * the account's last call. The hourly sync copies the hashes into OutcomeSnapshot (outcome-sync.server.ts).
 *
 * Who writes what:
 * - A call that reaches the quota script (200, 304, 429) is tallied BY the script, in the round trip it makes anyway
 *   (quota.server.ts, `servedStatus`); a refund takes the tally back with the unit.
 * - Every other answer (400, 401, 404, 503), and every request-log entry, goes through `recordApiAnswer`: buffered in
 *   this process and written by one script per flush, off the answer's path. The answer never waits for it; if Redis
 *   is slow or down, entries wait in a bounded buffer and past it are dropped (and counted as dropped).
 * - An answer given before the key's owner is known (a 401; a 503 while the key could not be read) is credited to
 *   the account whose key has the presented key's display prefix, looked up off the answer's path, else dropped.
 */

/** The statuses tallied per hour. Anything else (a 405, a 500 from a bug) is logged but not tallied. */
export const OUTCOME_STATUSES = [200, 304, 400, 401, 404, 429, 503] as const;
export type OutcomeStatus = (typeof OUTCOME_STATUSES)[number];
/** The answers that served nothing: what the dashboard stacks as "refused". */
export const REFUSED_STATUSES: readonly OutcomeStatus[] = [400, 401, 404, 429, 503];

export function isOutcomeStatus(status: number): status is OutcomeStatus {
  return (OUTCOME_STATUSES as readonly number[]).includes(status);
}

// Not "quota:…" (the usage sync SCANs that prefix for counters only).
const OUTCOMES_PREFIX = "outcomes:";
export const OUTCOMES_KEY_PATTERN = `${OUTCOMES_PREFIX}*`;
/** A tally outlives its hour by a day: long enough for the hourly sync to copy it, and for the 24 h chart. */
export const OUTCOMES_GRACE_SECONDS = 25 * 60 * 60;

/** "2026-11-30T07": the UTC hour a tally belongs to. */
export function outcomesHourText(at: Date): string {
  return at.toISOString().slice(0, 13);
}

export function outcomesKey(userId: string, at: Date): string {
  return `${outcomesKeyPrefix(userId)}${outcomesHourText(at)}`;
}

/** The part of an account's outcome-hash names before the hour (the quota's refund appends a recorded hour). */
export function outcomesKeyPrefix(userId: string): string {
  return `${OUTCOMES_PREFIX}${userId}:`;
}

export function parseOutcomesKey(key: string): { userId: string; hour: Date } | null {
  const match = /^outcomes:(.+):(\d{4}-\d{2}-\d{2}T\d{2})$/.exec(key);
  if (!match) return null;
  const hour = new Date(`${match[2]}:00:00.000Z`);
  return Number.isNaN(hour.getTime()) ? null : { userId: match[1], hour };
}

/** When the tally of the hour `at` falls in expires (unix seconds). */
export function outcomesExpiresAt(at: Date): number {
  return Math.floor(hourBucket(at).getTime() / 1000) + 3600 + OUTCOMES_GRACE_SECONDS;
}

// An account that stops calling keeps its last requests visible for a week, then Redis forgets them.
export const REQUEST_LOG_TTL_SECONDS = 7 * 24 * 60 * 60;

export function requestLogKey(userId: string): string {
  return `requestlog:${userId}`;
}

/** One request as the log keeps it: nothing a query value or a full key could leak. */
export interface RequestLogEntry {
  /** ISO time the request arrived. */
  at: string;
  status: number;
  /** From arrival to the answer being ready, in whole milliseconds. */
  ms: number;
  /** The key's display prefix ("sm_live_abc123"), or null when no well-formed key was sent. */
  keyPrefix: string | null;
  sheetId: string | null;
  /** The path with query parameter names only: "/api/v1/sheets/x?limit=…&country=…". */
  path: string;
}

const DISPLAY_PREFIX_LENGTH = API_KEY_PREFIX.length + 6;
const DISPLAY_PREFIX = /^sm_live_[A-Za-z0-9_-]{6}/;

/** The display prefix of a presented key (what /keys shows), or null when it does not even look like one. */
export function keyDisplayPrefix(token: string | null | undefined): string | null {
  return token && DISPLAY_PREFIX.test(token) ? token.slice(0, DISPLAY_PREFIX_LENGTH) : null;
}

const MAX_PATH_CHARS = 200;
const MAX_QUERY_NAMES = 12;
const MAX_NAME_CHARS = 40;

/**
 * The request's path for the log: query values are dropped (a filter value may be personal data, a misplaced key
 * may be sent as `?key=…`), parameter names kept so a customer can tell calls apart; everything bounded.
 */
export function loggablePath(url: string): string {
  // By hand rather than `new URL`: this runs on every call, and a plain path (the direct path's `req.url`) is the
  // common case. An absolute URL (the Remix route's request) loses its origin.
  let start = 0;
  if (!url.startsWith("/")) {
    const scheme = url.indexOf("://");
    start = scheme === -1 ? 0 : url.indexOf("/", scheme + 3);
    if (start === -1) return "/";
  }
  const hash = url.indexOf("#", start);
  const end = hash === -1 ? url.length : hash;
  const query = url.indexOf("?", start);
  const pathname = url.slice(start, query === -1 || query > end ? end : query);
  let path = pathname;
  if (query !== -1 && query < end) {
    const names: string[] = [];
    for (const name of new URLSearchParams(url.slice(query + 1, end)).keys()) {
      if (names.length >= MAX_QUERY_NAMES) {
        names.push("…");
        break;
      }
      names.push(`${encodeURIComponent(name.slice(0, MAX_NAME_CHARS))}=…`);
    }
    if (names.length > 0) path = `${pathname}?${names.join("&")}`;
  }
  return path.length > MAX_PATH_CHARS ? `${path.slice(0, MAX_PATH_CHARS - 1)}…` : path;
}

/** An answer of the consumer API, as the edge saw it. */
export interface ApiAnswer {
  /** The key's owner, when the call got that far; otherwise the answer is credited by `keyPrefix`, or dropped. */
  userId?: string;
  /** The quota script already tallied this answer (a 200, 304 or 429); only the log entry is left to write. */
  tallied?: boolean;
  status: number;
  at: Date;
  ms: number;
  keyPrefix: string | null;
  sheetId: string | null;
  path: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Crediting an answer given before the key's owner was known.

const PREFIX_CACHE_TTL_MS = 60_000;
const PREFIX_CACHE_MAX = 10_000;
// Lookups in flight at once; past it an answer is dropped rather than queued, so a flood of wrong keys costs
// Postgres a bounded amount whatever its rate.
const MAX_PREFIX_LOOKUPS = 8;
const PREFIX_LOOKUP_DEADLINE_MS = 1_000;

const NO_ACCOUNT = "";
const accountByPrefix = new LRUCache<string, string>({ max: PREFIX_CACHE_MAX, ttl: PREFIX_CACHE_TTL_MS });

/**
 * The one account owning a key (active or revoked) with this display prefix, or null: none, or several (36 random
 * bits make that rare; the answer then belongs to nobody for sure).
 */
export async function accountOfKeyPrefix(db: Db, prefix: string): Promise<string | null> {
  const keys = await db.apiKey.findMany({ where: { prefix }, select: { userId: true }, distinct: ["userId"], take: 2 });
  return keys.length === 1 ? keys[0].userId : null;
}

// Answers for the same prefix that arrive while it is being looked up wait for that one lookup.
const lookupsInFlight = new Map<string, Promise<string | null>>();

function creditByPrefix(db: Db, prefix: string): Promise<string | null> {
  const cached = accountByPrefix.get(prefix);
  if (cached !== undefined) return Promise.resolve(cached === NO_ACCOUNT ? null : cached);
  const inFlight = lookupsInFlight.get(prefix);
  if (inFlight) return inFlight;
  if (lookupsInFlight.size >= MAX_PREFIX_LOOKUPS) return Promise.resolve(null);
  const lookup = withDeadline(
    accountOfKeyPrefix(db, prefix),
    PREFIX_LOOKUP_DEADLINE_MS,
    `no answer within ${PREFIX_LOOKUP_DEADLINE_MS} ms`,
  )
    .then((userId) => {
      accountByPrefix.set(prefix, userId ?? NO_ACCOUNT);
      return userId;
    })
    .catch(() => null)
    .finally(() => lookupsInFlight.delete(prefix));
  lookupsInFlight.set(prefix, lookup);
  return lookup;
}

// ---------------------------------------------------------------------------------------------------------------
// The buffered writer.

/**
 * KEYS[1] the flush's record (one per flush, so a resend after a lost reply — the app's client resends once — does
 * not count twice), then the tally hashes, then the request lists. ARGV[1] JSON { t = {{expireAt, field, n, …}, …},
 * l = {{entry, …}, …} } in the same order as the keys; ARGV[2] the list length; ARGV[3] the lists' lifetime (s).
 * Entries are pushed oldest first, so the newest request is at the head.
 */
const FLUSH_SCRIPT = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', 60000) then return 0 end
local spec = cjson.decode(ARGV[1])
local k = 1
for _, tally in ipairs(spec.t) do
  k = k + 1
  for i = 2, #tally, 2 do redis.call('HINCRBY', KEYS[k], tally[i], tally[i + 1]) end
  redis.call('EXPIREAT', KEYS[k], tally[1])
end
for _, entries in ipairs(spec.l) do
  k = k + 1
  redis.call('LPUSH', KEYS[k], unpack(entries))
  redis.call('LTRIM', KEYS[k], 0, tonumber(ARGV[2]) - 1)
  redis.call('EXPIRE', KEYS[k], ARGV[3])
end
return 1
`;

const FLUSH_DELAY_MS = 50;
// Entries held at most (tallies and log lines of all accounts), whatever Redis does; past it answers are dropped.
export const MAX_PENDING_ANSWERS = 10_000;
const MAX_FLUSHES_IN_FLIGHT = 2;

interface Pending {
  tallies: Map<string, { expiresAt: number; counts: Map<number, number> }>;
  logs: Map<string, string[]>;
  size: number;
}

const emptyPending = (): Pending => ({ tallies: new Map(), logs: new Map(), size: 0 });

/** What the writer did, for tests and operators: answers written, dropped (buffer full or Redis failed), flushes. */
export interface RecorderStats {
  recorded: number;
  written: number;
  dropped: number;
  flushes: number;
  failedFlushes: number;
}

class OutcomeRecorder {
  private pending = emptyPending();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inFlight = new Set<Promise<void>>();
  private attributing = new Set<Promise<void>>();
  readonly stats: RecorderStats = { recorded: 0, written: 0, dropped: 0, flushes: 0, failedFlushes: 0 };

  constructor(private readonly redis: Redis) {}

  record(db: Db, answer: ApiAnswer): void {
    this.stats.recorded += 1;
    if (answer.userId) return this.add(answer.userId, answer);
    if (!answer.keyPrefix) return void (this.stats.dropped += 1);
    const attribution = creditByPrefix(db, answer.keyPrefix).then((userId) => {
      if (userId) this.add(userId, answer);
      else this.stats.dropped += 1;
    });
    this.attributing.add(attribution);
    void attribution.finally(() => this.attributing.delete(attribution));
  }

  private add(userId: string, answer: ApiAnswer): void {
    const tally = !answer.tallied && isOutcomeStatus(answer.status);
    const cost = tally ? 2 : 1;
    if (this.pending.size + cost > MAX_PENDING_ANSWERS) return void (this.stats.dropped += 1);
    this.pending.size += cost;
    if (tally) {
      const key = outcomesKey(userId, answer.at);
      let hash = this.pending.tallies.get(key);
      if (!hash) {
        hash = { expiresAt: outcomesExpiresAt(answer.at), counts: new Map() };
        this.pending.tallies.set(key, hash);
      }
      hash.counts.set(answer.status, (hash.counts.get(answer.status) ?? 0) + 1);
    }
    const entry: RequestLogEntry = {
      at: answer.at.toISOString(),
      status: answer.status,
      ms: Math.max(0, Math.round(answer.ms)),
      keyPrefix: answer.keyPrefix,
      sheetId: answer.sheetId,
      path: answer.path,
    };
    const key = requestLogKey(userId);
    const lines = this.pending.logs.get(key) ?? [];
    lines.push(JSON.stringify(entry));
    // Only the newest REQUEST_LOG_LENGTH can survive the trim; holding more would only cost memory and bytes.
    if (lines.length > REQUEST_LOG_LENGTH) {
      lines.shift();
      this.pending.size -= 1;
    }
    this.pending.logs.set(key, lines);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.inFlight.size >= MAX_FLUSHES_IN_FLIGHT) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.send();
    }, FLUSH_DELAY_MS);
    // A process that has nothing else to do may exit; the last 50 ms of log lines are not worth holding it.
    this.timer.unref?.();
  }

  private send(): void {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = emptyPending();
    const keys = [`outcomeflush:${randomUUID()}`];
    const spec: { t: (string | number)[][]; l: string[][] } = { t: [], l: [] };
    for (const [key, hash] of batch.tallies) {
      keys.push(key);
      const row: (string | number)[] = [hash.expiresAt];
      for (const [status, n] of hash.counts) row.push(String(status), n);
      spec.t.push(row);
    }
    for (const [key, lines] of batch.logs) {
      keys.push(key);
      spec.l.push(lines);
    }
    const size = batch.size;
    this.stats.flushes += 1;
    // The app's client gives every request a deadline (REDIS_TIMEOUT_MS), so a hung Redis ends this too.
    const flush = this.redis
      .eval(FLUSH_SCRIPT, keys, [JSON.stringify(spec), String(REQUEST_LOG_LENGTH), String(REQUEST_LOG_TTL_SECONDS)])
      .then(
        () => void (this.stats.written += size),
        (error: unknown) => {
          // Not retried: a flush whose reply was lost may have been applied, and another try would count twice.
          this.stats.failedFlushes += 1;
          this.stats.dropped += size;
          console.warn(`request outcomes: ${size} entries not recorded: ${(error as Error).message}`);
        },
      )
      .finally(() => {
        this.inFlight.delete(flush);
        if (this.pending.size > 0) this.schedule();
      });
    this.inFlight.add(flush);
  }

  /** Writes whatever is buffered and waits for every write in flight; for tests, scripts and shutdown. */
  async drain(): Promise<void> {
    while (this.attributing.size > 0 || this.inFlight.size > 0 || this.pending.size > 0 || this.timer) {
      await Promise.all([...this.attributing]);
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      if (this.inFlight.size < MAX_FLUSHES_IN_FLIGHT) this.send();
      if (this.inFlight.size > 0) await Promise.race([...this.inFlight]);
    }
  }
}

const recorders = new WeakMap<Redis, OutcomeRecorder>();

function recorderFor(redis: Redis): OutcomeRecorder {
  let recorder = recorders.get(redis);
  if (!recorder) {
    recorder = new OutcomeRecorder(redis);
    recorders.set(redis, recorder);
  }
  return recorder;
}

/**
 * Records one answer: its tally (unless the quota script made it) and its log entry. Never throws and never makes
 * the caller wait: the write leaves with the next flush, at most FLUSH_DELAY_MS later.
 */
export function recordApiAnswer(deps: { redis: Redis; db: Db }, answer: ApiAnswer): void {
  try {
    recorderFor(deps.redis).record(deps.db, answer);
  } catch (error) {
    console.warn(`request outcomes: answer not recorded: ${(error as Error).message}`);
  }
}

/** Waits until every answer recorded through `redis` so far is written (or dropped). */
export function drainApiAnswers(redis: Redis): Promise<void> {
  return recorderFor(redis).drain();
}

export function apiAnswerStats(redis: Redis): Readonly<RecorderStats> {
  return recorderFor(redis).stats;
}

export { REQUEST_LOG_LENGTH };

/** Forgets what this process learnt about key prefixes; tests use it after creating or deleting keys. */
export function clearKeyPrefixCache(): void {
  accountByPrefix.clear();
}

// ---------------------------------------------------------------------------------------------------------------
// Readers.

function parseEntry(line: unknown): RequestLogEntry | null {
  // The app's client parses JSON replies itself; a raw client hands the string over.
  let value: unknown = line;
  if (typeof line === "string") {
    try {
      value = JSON.parse(line);
    } catch {
      return null;
    }
  }
  if (!value || typeof value !== "object") return null;
  const entry = value as Partial<RequestLogEntry>;
  if (typeof entry.at !== "string" || typeof entry.status !== "number" || typeof entry.path !== "string") return null;
  return {
    at: entry.at,
    status: entry.status,
    ms: typeof entry.ms === "number" ? entry.ms : 0,
    keyPrefix: typeof entry.keyPrefix === "string" ? entry.keyPrefix : null,
    sheetId: typeof entry.sheetId === "string" ? entry.sheetId : null,
    path: entry.path,
  };
}

/** The account's last requests, newest first (at most REQUEST_LOG_LENGTH). */
export async function listRecentRequests(redis: Redis, userId: string): Promise<RequestLogEntry[]> {
  const lines = await redis.lrange<unknown>(requestLogKey(userId), 0, REQUEST_LOG_LENGTH - 1);
  return lines.map(parseEntry).filter((entry): entry is RequestLogEntry => entry !== null);
}

/** Counts per status, for one hour. */
export type OutcomeCounts = Partial<Record<OutcomeStatus, number>>;

function countsOf(reply: unknown): OutcomeCounts {
  const counts: OutcomeCounts = {};
  for (const [field, value] of hashEntries(reply)) {
    const status = Number(field);
    const n = Number(value);
    if (isOutcomeStatus(status) && Number.isSafeInteger(n) && n > 0) counts[status] = n;
  }
  return counts;
}

/** The live tallies of the hours from `from` up to `to` (at most the tallies' lifetime), by hour start (ms). */
export async function liveOutcomeCounts(
  redis: Redis,
  userId: string,
  from: Date,
  to: Date,
): Promise<Map<number, OutcomeCounts>> {
  const oldest = Math.max(hourBucket(from).getTime(), hourBucket(to).getTime() - OUTCOMES_GRACE_SECONDS * 1000);
  const hours: number[] = [];
  for (let t = oldest; t <= to.getTime(); t += HOUR_MS) hours.push(t);
  const result = new Map<number, OutcomeCounts>();
  if (hours.length === 0) return result;
  const pipeline = redis.pipeline();
  for (const t of hours) pipeline.hgetall(outcomesKey(userId, new Date(t)));
  const replies = await pipeline.exec<unknown[]>();
  hours.forEach((t, i) => {
    const counts = countsOf(replies[i]);
    if (Object.keys(counts).length > 0) result.set(t, counts);
  });
  return result;
}

/** The synced tallies of the hours from `from` (inclusive) to `to` (exclusive), by hour start (ms). */
export async function syncedOutcomeCounts(
  db: Db,
  userId: string,
  from: Date,
  to: Date,
): Promise<Map<number, OutcomeCounts>> {
  const rows = await db.outcomeSnapshot.findMany({
    where: { userId, hour: { gte: from, lt: to } },
    select: { hour: true, status: true, count: true },
  });
  const result = new Map<number, OutcomeCounts>();
  for (const row of rows) {
    if (!isOutcomeStatus(row.status)) continue;
    const counts = result.get(row.hour.getTime()) ?? {};
    counts[row.status] = row.count;
    result.set(row.hour.getTime(), counts);
  }
  return result;
}

/**
 * Each hour's tallies from the sync and from Redis together: per status the greater (a tally only grows within its
 * hour, so the greater is the newer), hours in order.
 */
export function mergeOutcomeCounts(
  ...sources: Map<number, OutcomeCounts>[]
): { hour: number; counts: OutcomeCounts }[] {
  const merged = new Map<number, OutcomeCounts>();
  for (const source of sources) {
    for (const [hour, counts] of source) {
      const into = merged.get(hour) ?? {};
      for (const status of OUTCOME_STATUSES) {
        const n = counts[status];
        if (n !== undefined) into[status] = Math.max(into[status] ?? 0, n);
      }
      merged.set(hour, into);
    }
  }
  return [...merged.entries()].sort(([a], [b]) => a - b).map(([hour, counts]) => ({ hour, counts }));
}

/** The account's tallies over a range: synced hours from Postgres, recent ones from Redis too. */
export async function getOutcomeHistory(
  deps: { redis: Redis; db: Db },
  userId: string,
  from: Date,
  to: Date,
): Promise<{ hour: number; counts: OutcomeCounts }[]> {
  const [synced, live] = await Promise.all([
    syncedOutcomeCounts(deps.db, userId, from, to),
    liveOutcomeCounts(deps.redis, userId, from, new Date(to.getTime() - 1)).catch((error: unknown) => {
      // The chart still shows what the sync copied when Redis does not answer.
      console.warn(`request outcomes: live tallies unavailable: ${(error as Error).message}`);
      return new Map<number, OutcomeCounts>();
    }),
  ]);
  return mergeOutcomeCounts(synced, live);
}

/**
 * Deletes everything of the account's outcomes: the request log and tallies in Redis, the OutcomeSnapshot rows in
 * Postgres. Tallies are found by name (the hours they can still exist for, with two hours of clock skew either
 * side), not by a SCAN of the whole keyspace. Deleting the User row deletes the rows too (trigger); this is for
 * callers that delete the Redis side, or clear an account's history without deleting it.
 */
export async function deleteOutcomeData(
  deps: { redis: Redis; db: Db },
  userId: string,
  now: Date = new Date(),
): Promise<void> {
  await deps.redis.del(...outcomeRedisKeys(userId, now));
  await deps.db.outcomeSnapshot.deleteMany({ where: { userId } });
}

/**
 * The names of every outcome key the account can have now: its request log and the tallies of the hours that can
 * still exist (with two hours of clock skew either side). Account deletion deletes them again after the account's
 * keys are gone, as an answer to a refused key may have written them in between.
 */
export function outcomeRedisKeys(userId: string, now: Date = new Date()): string[] {
  const keys = [requestLogKey(userId)];
  const newest = hourBucket(now).getTime() + 2 * HOUR_MS;
  const oldest = newest - OUTCOMES_GRACE_SECONDS * 1000 - 5 * HOUR_MS;
  for (let t = oldest; t <= newest; t += HOUR_MS) keys.push(outcomesKey(userId, new Date(t)));
  return keys;
}

/**
 * Stops this process crediting refused answers to the account by its keys' prefixes, once its keys are deleted;
 * other processes stop within PREFIX_CACHE_TTL_MS.
 */
export function forgetAccountPrefixes(userId: string): void {
  for (const [prefix, owner] of accountByPrefix.entries()) if (owner === userId) accountByPrefix.delete(prefix);
}
