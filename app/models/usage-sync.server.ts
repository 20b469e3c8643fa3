import type { Redis } from "@upstash/redis";
import { hashEntries } from "~/utils/redis.server";
import type { Db } from "~/utils/db.server";
import {
  HOUR_MS,
  isPeriod,
  quotaKeyUserId,
  periodEnd,
  periodOf,
  previousPeriod,
  QUOTA_KEY_PATTERN,
} from "~/utils/period";
import { syncOutcomeSnapshots } from "./outcome-sync.server";
import {
  type ChunkStatus,
  type ClaimRequest,
  claimSyncRun,
  findSyncRun,
  finishSyncChunk,
  latestFinalPeriod,
  type PageProgress,
  recordFinalPeriod,
  recordPageProgress,
  SyncLeaseLostError,
  type SyncRunState,
  type SyncStep,
} from "./sync-runs.server";
import { isWritableUserId, SnapshotBatch, snapshotHourText, upsertSnapshotBatch } from "./usage-snapshot-writer.server";

/**
 * The hourly sync: copies every live quota counter from Redis into Postgres as that user's snapshot for the hour.
 *
 * It streams SCAN pages → MGET → batched upserts, so memory is bounded by the batch size whatever the number of
 * users, and it stops starting new pages once its time budget is spent, leaving the SCAN cursor in its `SyncRun`
 * so a continuation can pick up where it stopped. It knows nothing of HTTP or QStash: the route, the admin CLI, the
 * tests and the benchmark all call `syncUsageSnapshots` with their own clients.
 *
 * Running a chunk twice, or two runs in one hour, writes the same rows and never lowers one: a snapshot's key is
 * (user, hour) and the batch writer keeps the greater value. A run's totals stay exact because only the worker
 * holding the run's lease records progress (see sync-runs.server).
 */

export interface SyncOptions extends ClaimRequest {
  /** Stop starting new SCAN pages after this many milliseconds (at least one page is always processed). */
  budgetMs?: number;
  /** SCAN COUNT hint per page. */
  scanCount?: number;
  /** Snapshots per INSERT statement at most. */
  batchSize?: number;
  /**
   * Rows sorted together before being cut into batches (whole pages: a window closes at the first page boundary at
   * or past this size). Defaults to DEFAULT_WINDOW_ROWS, or to `batchSize` when only that is given.
   */
  windowRows?: number;
  /** Statements in flight at once, each on its own pooled connection. */
  writers?: number;
  /** Filled in with where the chunk's time went (the bench prints it); see SyncPhaseTimings. */
  timings?: SyncPhaseTimings;
}

/**
 * Where a chunk's time goes, in milliseconds, summed over its pages and batches. Reads and writes overlap, so the
 * phases add up to more than the wall time; the two `wait…` figures say which side the sync was waiting for.
 */
export interface SyncPhaseTimings {
  /** SCAN requests (wall time, read ahead while the previous page is written). */
  redisScanMs: number;
  /** The counters' and per-key hashes' reads (wall time, read ahead as well). */
  redisReadMs: number;
  /** Turning a page's replies into rows (CPU of this process). */
  buildMs: number;
  /** Sorting a batch and encoding its columns (CPU of this process). */
  prepareMs: number;
  /** Batch statements, from sending to their reply (wall time; up to `writers` overlap). */
  writeMs: number;
  /** Recording committed pages in SyncRun (wall time, one statement per page). */
  progressMs: number;
  /** The main loop waiting for a page from Redis. */
  waitRedisMs: number;
  /** The main loop waiting for a statement to finish before it may send another. */
  waitPostgresMs: number;
  /** Pages read and statements sent. */
  pages: number;
  statements: number;
}

export function emptySyncTimings(): SyncPhaseTimings {
  return {
    redisScanMs: 0,
    redisReadMs: 0,
    buildMs: 0,
    prepareMs: 0,
    writeMs: 0,
    progressMs: 0,
    waitRedisMs: 0,
    waitPostgresMs: 0,
    pages: 0,
    statements: 0,
  };
}

export interface SyncResult {
  runId: string;
  /** The run's status; "running" only when another worker holds it (`busy`) or took it over (`superseded`). */
  status: ChunkStatus | "running";
  /** Where the next chunk starts; "0" once the whole keyspace has been covered. */
  cursor: string;
  /** The step the run is on. */
  step: number;
  /** Totals of the whole run so far (all chunks). */
  users: number;
  batches: number;
  skipped: number;
  chunks: number;
  /** The failure, when status is "failed". */
  error?: string;
  /**
   * The continuation to publish: this chunk handed the run on, or this delivery is a repeat of the one that did and
   * the run still waits for that continuation (its publication failed, or its worker died right after the hand-over).
   */
  next?: SyncStep;
  /** The run had already moved past this delivery's step (a redelivered message, a stale continuation): nothing done. */
  duplicate?: true;
  /** Another worker holds this step under a live lease: nothing done; deliver again in `retryAfterMs`. */
  busy?: { retryAfterMs: number };
  /** This worker's lease lapsed and another worker took the run over; this one stopped without recording more. */
  superseded?: true;
}

// Keys per SCAN page, and so per MGET. Each page is one round trip through the REST API for SCAN and one for MGET,
// whose fixed cost (HTTP, JSON, the stand-in's or Upstash's own work) dominated at 2 000 keys; 10 000 keys read
// 100 000 counters in about half the time. A page larger than a batch is split into several statements.
export const DEFAULT_SCAN_COUNT = 10_000;
// Large enough that a statement's fixed cost is noise (2 000 rows take tens of ms, the round trip and planning one),
// small enough to bound memory: Prisma's debug module keeps the arguments of the last 100 debug calls even with
// debugging off, and the driver adapter logs every query with its parameters, so the last 100 batches stay
// reachable. Sent as four delimited strings (see upsertSnapshotBatch) that is ~60 bytes a row, ≤ 12 MB in all.
export const DEFAULT_BATCH_SIZE = 2000;
// Rows sorted together, then cut into batches of consecutive user ids. A batch of 2 000 users in SCAN (hash) order
// probes and inserts at ~2 000 random places of the "User" index and the snapshot index, about one buffer miss a
// row; 2 000 consecutive ids of a sorted window of 100 000 share leaf pages (Postgres backend CPU per 200 000 rows:
// 1.0 s against 1.8 s). Memory: the window's rows (~100 bytes each) and their sorted copy, ~15 MB at 50 000.
export const DEFAULT_WINDOW_ROWS = 50_000;
// Pages read ahead of the one being built: enough that Redis keeps reading while a window's statements wait for a
// writer (one page ahead left the sync waiting for Redis about as long as for Postgres), few enough that at most a
// few MB of replies are held.
const READ_AHEAD_PAGES = 3;
// Two statements in flight, on two pooled connections, let Postgres use both cores of a small machine while the
// next page is read from Redis. One was slower (42 k users/s at 100 000 users against 50–53 k), and so was a third
// (44–45 k): on two cores it only competes with the sync's own process, and each adds a batch of memory.
export const DEFAULT_WRITERS = 2;
// Postgres `integer`; a larger (corrupt) counter would fail the whole batch, so it is skipped instead.
const MAX_INT4 = 2_147_483_647;

interface ChunkOutcome {
  /** Where the next chunk starts: after the last page recorded as committed. */
  cursor: string;
  users: number;
  batches: number;
  skipped: number;
  error?: unknown;
}

interface Page {
  keys: string[];
  /** Each key's user and month, or null where the key does not parse (it is skipped). */
  /** Each key's user id, or null where the key does not parse or names no valid month (it is skipped). */
  userIds: (string | null)[];
  values: unknown[];
  /** The per-key counts (the quota script's `keyusage:` hash of the same user and month) of the counters that have any, by index in `keys`. */
  keyCounts: Map<number, unknown>;
  next: string;
}

/**
 * Which snapshot a counter of `period` goes to in a run of `runHour`: the run's own hour for the current month; the
 * last hour of its month for an earlier month (its final count, recorded by the first runs of the next month
 * while the key has not expired yet — the run's own hour would belong to the wrong month); none for a later month
 * (an API server whose clock is ahead; the next run records it).
 */
function snapshotHourFor(period: string, runPeriod: string, runHourText: string): string | null {
  if (period === runPeriod) return runHourText;
  if (period < runPeriod) return snapshotHourText(new Date(periodEnd(period).getTime() - HOUR_MS));
  return null;
}

function toCount(value: unknown): number | null {
  // @upstash/redis deserialises "42" to 42; a raw string can still come through from other clients.
  const count = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isSafeInteger(count) && count >= 0 && count <= MAX_INT4 ? count : null;
}

// Counters read per script run: each run blocks Redis for the time it takes (about a millisecond per thousand keys
// here), so a page is read in several runs that other clients' commands can interleave with.
const READ_CHUNK = 1000;

/**
 * KEYS are counters (`quota:{userId}:{period}`). Returns { values, hashes }: each counter (nil if gone), and for the
 * counters whose per-key hash (`keyusage:{userId}:{period}`, the same name after its prefix) is not empty, their
 * index (1-based) followed by the hash as a flat field/value list. The hashes' names are made here rather than
 * sent: they doubled each request (20 000 names a page for the REST layer to parse and Redis to read), and they
 * are a fixed function of the counters'. Upstash runs a script without the `allow-key-locking` flag under its
 * global lock, so a script may read keys it was not given; a cluster would need them declared.
 *
 * A script rather than one pipelined HGETALL per counter: a page of 10 000 counters was then 10 000 commands for
 * the REST layer to parse, run and encode one by one (bench:sync at 100 000 users: 26 k users/s against 45 k). The
 * counters are one MGET, not a GET each: a `redis.call` per counter as well cost twice as much again (13 k against
 * 28 k users/s, same series). Only non-empty hashes come back: most users call without a key or not at all in an
 * hour, and an empty list per counter was as many objects to encode, send, parse and collect as the counters.
 */
const READ_COUNTERS_SCRIPT = `
local hashes = {}
for i = 1, #KEYS do
  local hash = redis.call('HGETALL', 'keyusage:' .. string.sub(KEYS[i], 7))
  if #hash > 0 then
    hashes[#hashes + 1] = i
    hashes[#hashes + 1] = hash
  end
end
return {redis.call('MGET', unpack(KEYS)), hashes}
`;

/**
 * One SCAN page, and the values of the keys `wanted` keeps. A finished month's counters are dropped before the MGET:
 * once its final copy is in Postgres, reading them again for the rest of their grace week would be wasted work.
 */
async function readPage(
  redis: Redis,
  cursor: string,
  count: number,
  wanted: (key: string) => boolean,
  timings: SyncPhaseTimings,
): Promise<Page> {
  let t = performance.now();
  const [next, scanned] = await redis.scan(cursor, { match: QUOTA_KEY_PATTERN, count });
  timings.redisScanMs += performance.now() - t;
  timings.pages += 1;
  const keys = scanned.filter(wanted);
  const userIds = keys.map(quotaKeyUserId);
  const keyCounts = new Map<number, unknown>();
  if (keys.length === 0) return { next: String(next), keys, userIds, values: [], keyCounts };
  // The counters and their per-key hashes in one request: the hashes are found by name from the counters (they are
  // not under "quota:", so the SCAN never lists them), and a page costs two round trips, the SCAN and this one.
  const pipeline = redis.pipeline();
  for (let start = 0; start < keys.length; start += READ_CHUNK) {
    pipeline.eval(READ_COUNTERS_SCRIPT, keys.slice(start, start + READ_CHUNK), []);
  }
  t = performance.now();
  const replies = await pipeline.exec<[unknown[], unknown[]][]>();
  timings.redisReadMs += performance.now() - t;
  const values: unknown[] = [];
  for (const [chunkValues, chunkHashes] of replies) {
    const offset = values.length;
    for (const value of chunkValues) values.push(value);
    for (let j = 0; j + 1 < chunkHashes.length; j += 2)
      keyCounts.set(offset + Number(chunkHashes[j]) - 1, chunkHashes[j + 1]);
  }
  return { next: String(next), keys, userIds, values, keyCounts };
}

/**
 * Streams pages from `startCursor` until the cursor returns to 0 or the budget is spent. The next page (SCAN, then
 * MGET) is read while the current one's statements run, and up to settings.writers statements run at once on
 * their own pooled connections, so Redis and Postgres (on both cores) work at the same time; at most two pages and
 * that many batches are held, whatever the number of users. Only the committed prefix of batches counts, and the
 * cursor only moves past a page once every row of it committed, so a failure resumes exactly after that page.
 * Each such page is handed to `pageCommitted` (which records it and renews the lease) before it counts; if that
 * throws — the lease was taken over, Postgres failed — the chunk stops there.
 */
async function syncChunk(
  deps: { redis: Redis; db: Db },
  run: { hour: Date },
  startCursor: string,
  settings: {
    budgetMs: number;
    scanCount: number;
    batchSize: number;
    windowRows: number;
    writers: number;
    timings: SyncPhaseTimings;
  },
  pageCommitted: (page: PageProgress) => Promise<void>,
): Promise<ChunkOutcome> {
  const { redis, db } = deps;
  const { timings } = settings;
  const started = performance.now();
  const budgetSpent = () => performance.now() - started >= settings.budgetMs;
  const runPeriod = periodOf(run.hour);
  const runHourText = snapshotHourText(run.hour);
  const outcome: ChunkOutcome = { cursor: startCursor, users: 0, batches: 0, skipped: 0 };
  let finalThrough: string | null;
  try {
    finalThrough = await latestFinalPeriod(db);
  } catch (error) {
    // Postgres failed before anything was read: recorded as a failed chunk, which a retry resumes at once.
    return { ...outcome, error };
  }
  // A key of a month already final is passed over, neither read nor counted as skipped: nothing is wrong with it.
  // Only months before the run's own: a run's current month is never final, whatever a clock said before.
  // The period is the key's last seven characters (quotaKey); a malformed key is let through, to be counted below.
  const wanted = (key: string) => {
    if (finalThrough === null) return true;
    const period = key.slice(-7);
    return !isPeriod(period) || period > finalThrough || period >= runPeriod;
  };

  // Each month's snapshot hour, worked out once: a page holds a handful of months at most.
  const hours = new Map<string, string | null>();
  const hourOf = (period: string) => {
    let hour = hours.get(period);
    if (hour === undefined) {
      hour = isPeriod(period) ? snapshotHourFor(period, runPeriod, runHourText) : null;
      if (hours.size < 100) hours.set(period, hour);
    }
    return hour;
  };

  // Totals of committed batches since the last page boundary: they only count once the page's last batch commits,
  // because a retry resumes at that page's start and writes (and counts) its rows again.
  const sincePage = { users: 0, batches: 0, skipped: 0 };
  // Batches in the order their pages were scanned; a batch's cursor only counts once every earlier one committed.
  const inFlight: { batch: SnapshotBatch; write: Promise<number> }[] = [];
  let failure: { error: unknown } | undefined;

  const settleOldest = async () => {
    const { batch, write } = inFlight.shift()!;
    try {
      const written = await write;
      if (failure) return;
      sincePage.users += written;
      sincePage.skipped += batch.skipped + (batch.size - written);
      if (batch.size > 0) sincePage.batches += 1;
      if (batch.closesPage) {
        const page = { cursor: batch.endCursor, ...sincePage };
        Object.assign(sincePage, { users: 0, batches: 0, skipped: 0 });
        const t = performance.now();
        await pageCommitted(page);
        timings.progressMs += performance.now() - t;
        outcome.cursor = page.cursor;
        outcome.users += page.users;
        outcome.skipped += page.skipped;
        outcome.batches += page.batches;
      }
    } catch (error) {
      failure ??= { error };
    }
  };
  // Waits for the oldest statement first when the queue is full, so memory stays bounded and writes keep order.
  const send = async (batch: SnapshotBatch) => {
    if (inFlight.length >= settings.writers) {
      const t = performance.now();
      await settleOldest();
      timings.waitPostgresMs += performance.now() - t;
    }
    if (failure) return;
    const t = performance.now();
    timings.statements += 1;
    const write = upsertSnapshotBatch(db, batch).finally(() => (timings.writeMs += performance.now() - t));
    // Observed here so a rejection is never "unhandled" while an earlier batch is still being awaited.
    write.catch(() => {});
    inFlight.push({ batch, write });
  };
  // A window is sorted as a whole, then written in statements of at most batchSize rows, each a contiguous range of
  // user ids. Only the last part moves the cursor (see SnapshotBatch.inParts).
  const flush = async (window: SnapshotBatch) => {
    const t = performance.now();
    const parts = window.inKeyOrder().inParts(settings.batchSize);
    timings.prepareMs += performance.now() - t;
    for (const part of parts) {
      if (failure) return;
      await send(part);
    }
  };

  // The rows read since the last window was sent: whole pages only, so when it commits the cursor can move past them.
  let window = new SnapshotBatch();
  window.endCursor = startCursor;
  let pageStart = startCursor;
  // Read ahead: up to READ_AHEAD_PAGES pages are read (each as soon as the one before it arrived) while earlier
  // ones are built and written, so Redis keeps working while a window's statements wait for a free writer. Null
  // once the keyspace is covered or the budget is spent: no new SCAN page is started after that.
  let tail: Promise<Page | null> = readPage(redis, startCursor, settings.scanCount, wanted, timings);
  // Observed here so a failed read is never "unhandled" before the loop reaches it.
  tail.catch(() => {});
  const ahead = [tail];
  const readAhead = () => {
    while (ahead.length < READ_AHEAD_PAGES) {
      tail = tail.then((page) =>
        page === null || page.next === "0" || budgetSpent()
          ? null
          : readPage(redis, page.next, settings.scanCount, wanted, timings),
      );
      tail.catch(() => {});
      ahead.push(tail);
    }
  };
  try {
    readAhead();
    while (!failure) {
      let t = performance.now();
      const page = await ahead.shift()!;
      timings.waitRedisMs += performance.now() - t;
      if (page === null) break;
      readAhead();

      if (window.size > 0 && window.size + page.keys.length > settings.windowRows) {
        // This page may not fit: the window so far holds whole pages only, so it goes first and moves the cursor.
        await flush(window);
        window = new SnapshotBatch();
        window.endCursor = pageStart;
      }
      t = performance.now();
      // Per-page work on each counter goes here: the row of its user, and the rows of its keys. A further family
      // of counters read by the script would be turned into rows in this loop too.
      for (let i = 0; i < page.keys.length; i++) {
        const key = page.keys[i];
        const userId = page.userIds[i];
        // The month is the name's last seven characters (quotaKeyUserId checked it).
        const period = key.slice(-7);
        const count = toCount(page.values[i]);
        const hour = userId === null ? null : hourOf(period);
        if (userId === null || hour === null || count === null || !isWritableUserId(userId)) {
          // Expired between SCAN and MGET, not an integer, not a month we may write yet, or not a user id.
          window.skipped += 1;
          continue;
        }
        window.add(userId, period, hour, count, key);
        const keyCounts = page.keyCounts.get(i);
        if (keyCounts !== undefined)
          for (const [keyId, value] of hashEntries(keyCounts)) {
            const keyCount = toCount(value);
            if (keyCount !== null) window.addKey(keyId, userId, period, hour, keyCount);
          }
      }
      timings.buildMs += performance.now() - t;
      window.endCursor = page.next;
      window.closesPage = true;
      pageStart = page.next;

      if (window.size >= settings.windowRows) {
        await flush(window);
        window = new SnapshotBatch();
        window.endCursor = page.next;
      }
    }
    // The last pages read (or, when there was nothing to read, the empty page that closed the keyspace).
    if (!failure && window.closesPage) await flush(window);
  } catch (error) {
    // Redis failed; whatever was already sent to Postgres may still commit and is accounted for below.
    failure ??= { error };
  }
  while (inFlight.length > 0) await settleOldest();
  if (failure) outcome.error = failure.error;
  return outcome;
}

function resultOf(run: SyncRunState): SyncResult {
  const status =
    run.status === "succeeded" || run.status === "failed" || run.status === "running" ? run.status : "continued";
  return {
    runId: run.id,
    status,
    cursor: run.cursor ?? "0",
    step: run.step,
    users: run.users,
    batches: run.batches,
    skipped: run.skipped,
    chunks: run.chunks,
  };
}

/**
 * Runs one chunk of the sync (the whole sync when no budget is given) under a lease on the run, and records it in
 * `SyncRun`.
 *
 * Returns "continued" with `next` when the budget ran out: the caller publishes that continuation. Returns "failed"
 * when Redis or Postgres failed; a retry of the same delivery resumes after the last committed page. Returns
 * `busy`, `duplicate` or `superseded` when this delivery did no (further) work; see SyncResult.
 */
export async function syncUsageSnapshots(
  deps: { redis: Redis; db: Db },
  options: SyncOptions = {},
): Promise<SyncResult> {
  const { db } = deps;
  const claim = await claimSyncRun(db, options);
  if (claim.kind === "busy") return { ...resultOf(claim.run), busy: { retryAfterMs: claim.retryAfterMs } };
  if (claim.kind === "duplicate") {
    const { run, step } = claim;
    const waitsForOurs = run.status === "continued" && run.step === step + 1;
    return { ...resultOf(run), duplicate: true, ...(waitsForOurs ? { next: { runId: run.id, step: run.step } } : {}) };
  }

  const { run, lease } = claim;
  const runPeriod = periodOf(run.hour);
  const outcome = await syncChunk(
    deps,
    run,
    run.cursor ?? "0",
    {
      budgetMs: options.budgetMs ?? Number.POSITIVE_INFINITY,
      scanCount: options.scanCount ?? DEFAULT_SCAN_COUNT,
      batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
      // A caller that sizes batches without naming a window gets one batch a window, as before windows existed.
      windowRows: options.windowRows ?? options.batchSize ?? DEFAULT_WINDOW_ROWS,
      writers: options.writers ?? DEFAULT_WRITERS,
      timings: options.timings ?? emptySyncTimings(),
    },
    (page) => recordPageProgress(db, lease, page),
  );
  try {
    if (outcome.error instanceof SyncLeaseLostError) throw outcome.error;
    const recorded = await finishSyncChunk(db, lease, outcome, {
      users: run.users + outcome.users,
      batches: run.batches + outcome.batches,
      skipped: run.skipped + outcome.skipped,
      chunks: run.chunks + 1,
    });
    if (recorded.status === "succeeded") {
      // This run began after the previous month ended and covered every key: that month's counters are final now,
      // and the runs of the coming hours pass them over. Not recorded (Postgres failed just now), the next run
      // writes them again — the same values, under GREATEST — and records it.
      await recordFinalPeriod(db, previousPeriod(runPeriod), run.id).catch(() => {});
      // The outcome tallies' own step (outcome-sync.server.ts), once per run that covered every counter. Its
      // failure fails nothing here: the tallies live a day, and the next run copies them.
      await syncOutcomeSnapshots(deps, { budgetMs: options.budgetMs }).catch((error: unknown) => {
        console.warn(`sync: outcome tallies not copied this run: ${(error as Error).message}`);
      });
    }
    const next = recorded.status === "continued" ? { runId: run.id, step: recorded.step } : undefined;
    return { runId: run.id, ...recorded, ...(next ? { next } : {}) };
  } catch (error) {
    if (!(error instanceof SyncLeaseLostError)) throw error;
    const current = await findSyncRun(db, run.id);
    return { ...resultOf(current ?? run), superseded: true };
  }
}
