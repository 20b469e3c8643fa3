import type { Redis } from "@upstash/redis";
import type { Db } from "~/utils/db.server";
import { hourBucket, isPeriod, parseQuotaKey, periodEnd, periodOf, QUOTA_KEY_PATTERN } from "~/utils/period";

/**
 * The hourly sync: copies every live quota counter from Redis into Postgres as that user's snapshot for the hour.
 *
 * It streams SCAN pages → MGET → batched upserts, so memory is bounded by the batch size whatever the number of
 * users, and it stops starting new pages once its time budget is spent, leaving the SCAN cursor in its `SyncRun`
 * so a continuation can pick up where it stopped. It knows nothing of HTTP or QStash: the route, the admin CLI, the
 * tests and the benchmark all call `syncUsageSnapshots` with their own clients.
 *
 * Idempotency rests on two facts: a snapshot's key is (user, hour), and usage within a month only grows, so every
 * write is an upsert that keeps the greater value. Running a chunk twice, or two runs in one hour, writes the same
 * rows and never lowers one.
 */

export interface SyncOptions {
  /** When the run starts; fixes its hour bucket. Ignored when resuming a run, which keeps its own hour. */
  now?: Date;
  /** Stop starting new SCAN pages after this many milliseconds (at least one page is always processed). */
  budgetMs?: number;
  /** Resume this run (a continuation). */
  runId?: string;
  /** The cursor a continuation message carries: proves it is the continuation the run is waiting for. */
  cursor?: string;
  /** Upstash-Message-Id of the delivery; a redelivery of the same id resumes (or acknowledges) the same run. */
  messageId?: string | null;
  /** SCAN COUNT hint per page. */
  scanCount?: number;
  /** Snapshots per INSERT statement (a batch closes at the first page boundary at or past this size). */
  batchSize?: number;
}

export interface SyncResult {
  runId: string;
  status: "succeeded" | "continued" | "failed";
  /** Where the next chunk starts; "0" once the whole keyspace has been covered. */
  cursor: string;
  /** Totals of the whole run so far (all chunks). */
  users: number;
  batches: number;
  skipped: number;
  chunks: number;
  /** The failure, when status is "failed". */
  error?: string;
  /**
   * True when this delivery had already been handled (a redelivered message or a stale continuation): nothing was
   * done and the caller must not publish another continuation.
   */
  duplicate?: boolean;
}

// Keys per SCAN page, and so per MGET. Each page is one round trip through the REST API for SCAN and one for MGET,
// whose fixed cost (HTTP, JSON, the stand-in's or Upstash's own work) dominated at 2 000 keys; 10 000 keys read
// 100 000 counters in about half the time. A page larger than a batch is split into several statements.
export const DEFAULT_SCAN_COUNT = 10_000;
// Large enough that a statement's fixed cost is noise (2 000 rows take tens of ms, the round trip and planning one),
// small enough to bound memory: Prisma's debug module keeps the arguments of the last 100 debug calls even with
// debugging off, and the driver adapter logs every query with its parameters, so the last 100 batches stay
// reachable. Sent as four delimited strings (see upsertBatch) that is ~60 bytes a row, ≤ 12 MB in all.
export const DEFAULT_BATCH_SIZE = 2000;
// Two statements in flight, on two pooled connections, let Postgres use both cores of a small machine while the
// next page is read from Redis. One was slower (42 k users/s at 100 000 users against 50–53 k), and so was a third
// (44–45 k): on two cores it only competes with the sync's own process, and each adds a batch of memory.
const MAX_UPSERTS_IN_FLIGHT = 2;
// Columns travel as one delimited string each (see upsertBatch); a user id containing it cannot be sent, and cannot
// be a real one either (ids are cuids).
const SEPARATOR = ",";
// Postgres `integer`; a larger (corrupt) counter would fail the whole batch, so it is skipped instead.
const MAX_INT4 = 2_147_483_647;
const HOUR_MS = 3_600_000;

export class SyncRunNotFoundError extends Error {
  constructor(runId: string) {
    super(`Sync run ${runId} does not exist.`);
  }
}

interface Page {
  keys: string[];
  values: unknown[];
  next: string;
}

/** The rows of one INSERT, as the column arrays `unnest` takes. */
class SnapshotBatch {
  userIds: string[] = [];
  periods: string[] = [];
  hours: string[] = [];
  used: number[] = [];
  skipped = 0;
  /**
   * Where the run may resume once this batch and every earlier one committed: the end of the last page whose rows
   * are all in them. A batch cut in the middle of a page keeps the cursor of that page's start.
   */
  endCursor = "0";
  /** Whether the batch ends at a page boundary, i.e. moves the run's cursor forward when it commits. */
  closesPage = false;

  get size() {
    return this.userIds.length;
  }

  add(userId: string, period: string, hour: string, used: number) {
    this.userIds.push(userId);
    this.periods.push(period);
    this.hours.push(hour);
    this.used.push(used);
  }

  /**
   * The rows in (user, hour) order, each once. SCAN returns keys in hash order, so unsorted every row lands on a
   * random leaf of the snapshot and user indexes; in key order consecutive rows share leaf pages (about a third
   * less time per batch here), and concurrent statements lock rows in the same order, so they cannot deadlock
   * each other. SCAN may also return a key twice while Redis rehashes, and the same (user, hour) twice in one
   * statement would abort it ("ON CONFLICT DO UPDATE command cannot affect row a second time"); sorted, the
   * duplicates are neighbours.
   */
  inKeyOrder(): SnapshotBatch {
    const { userIds, hours } = this;
    const order = userIds.map((_, i) => i);
    order.sort((a, b) =>
      userIds[a] !== userIds[b]
        ? userIds[a] < userIds[b]
          ? -1
          : 1
        : hours[a] < hours[b]
          ? -1
          : hours[a] > hours[b]
            ? 1
            : 0,
    );
    const sorted = new SnapshotBatch();
    sorted.skipped = this.skipped;
    sorted.endCursor = this.endCursor;
    sorted.closesPage = this.closesPage;
    for (const i of order) {
      const last = sorted.size - 1;
      if (last >= 0 && sorted.userIds[last] === userIds[i] && sorted.hours[last] === hours[i]) {
        sorted.used[last] = Math.max(sorted.used[last], this.used[i]);
        continue;
      }
      sorted.add(userIds[i], this.periods[i], hours[i], this.used[i]);
    }
    return sorted;
  }
}

/** `timestamp(3)` text in UTC, the way Prisma stores DateTime in a column without a time zone. */
function timestampText(date: Date): string {
  return date.toISOString().slice(0, 19).replace("T", " ");
}

/**
 * Which snapshot a counter of `period` goes to in a run of `runHour`: the run's own hour for the current month; the
 * last hour of its month for an earlier month (its final count, recorded by the first runs of the next month
 * while the key has not expired yet — the run's own hour would belong to the wrong month); none for a later month
 * (an API server whose clock is ahead; the next run records it).
 */
function snapshotHourFor(period: string, runPeriod: string, runHourText: string): string | null {
  if (period === runPeriod) return runHourText;
  if (period < runPeriod) return timestampText(new Date(periodEnd(period).getTime() - HOUR_MS));
  return null;
}

function toCount(value: unknown): number | null {
  // @upstash/redis deserialises "42" to 42; a raw string can still come through from other clients.
  const count = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isSafeInteger(count) && count >= 0 && count <= MAX_INT4 ? count : null;
}

async function readPage(redis: Redis, cursor: string, count: number): Promise<Page> {
  const [next, keys] = await redis.scan(cursor, { match: QUOTA_KEY_PATTERN, count });
  const values = keys.length > 0 ? await redis.mget<unknown[]>(keys) : [];
  return { next: String(next), keys, values };
}

/**
 * One statement per batch. The JOIN drops counters of users deleted since (their keys linger until they expire);
 * the affected-row count is what was written, so the difference is what was skipped.
 *
 * Each column travels as one delimited string that Postgres splits, not as a JS array: Prisma, the driver adapter
 * and `pg` each walk an array parameter element by element (~4 ms of CPU per 2 000-row batch here, against ~1 ms
 * for a join), and the copies Prisma's debug history keeps are four strings instead of 8 000 small ones.
 *
 * `set_config('synchronous_commit', 'off', true)` is `SET LOCAL` for the statement's own transaction, without the
 * three extra round trips of an explicit BEGIN … COMMIT: the commit returns without waiting for its WAL flush. A
 * crash of Postgres within a fraction of a second after it can lose the last batches that were acknowledged — a lost
 * snapshot is written again by the next hourly run (the counter is still in Redis, and within a month it only
 * grows, so the later value is at least as large); a crash never leaves a batch half written or corrupt.
 */
async function upsertBatch(db: Db, batch: SnapshotBatch): Promise<number> {
  if (batch.size === 0) return 0;
  return db.$executeRaw`
    WITH async_commit AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))
    INSERT INTO "UsageSnapshot" ("userId", "period", "hour", "used", "syncedAt")
    SELECT incoming."userId", incoming."period", incoming."hour", incoming."used", now() AT TIME ZONE 'UTC'
    FROM unnest(
        string_to_array(${batch.userIds.join(SEPARATOR)}::text, ${SEPARATOR}::text),
        string_to_array(${batch.periods.join(SEPARATOR)}::text, ${SEPARATOR}::text),
        string_to_array(${batch.hours.join(SEPARATOR)}::text, ${SEPARATOR}::text)::timestamp[],
        string_to_array(${batch.used.join(SEPARATOR)}::text, ${SEPARATOR}::text)::int[]
      ) AS incoming("userId", "period", "hour", "used")
    JOIN "User" ON "User"."id" = incoming."userId"
    CROSS JOIN async_commit
    ON CONFLICT ("userId", "hour") DO UPDATE
      SET "used" = GREATEST("UsageSnapshot"."used", EXCLUDED."used"), "syncedAt" = EXCLUDED."syncedAt"`;
}

interface ChunkOutcome {
  /** Where the next chunk starts (the end of the last committed batch). */
  cursor: string;
  users: number;
  batches: number;
  skipped: number;
  error?: unknown;
}

/**
 * Streams pages from `startCursor` until the cursor returns to 0 or the budget is spent. The next page (SCAN, then
 * MGET) is read while the current one's statements run, and up to MAX_UPSERTS_IN_FLIGHT statements run at once on
 * their own pooled connections, so Redis and Postgres (on both cores) work at the same time; at most two pages and
 * that many batches are held, whatever the number of users. Only the committed prefix of batches counts, and the
 * cursor only moves past a page once every row of it committed, so a failure resumes exactly after that page.
 */
async function syncChunk(
  deps: { redis: Redis; db: Db },
  run: { hour: Date },
  startCursor: string,
  settings: { budgetMs: number; scanCount: number; batchSize: number },
): Promise<ChunkOutcome> {
  const { redis, db } = deps;
  const started = performance.now();
  const budgetSpent = () => performance.now() - started >= settings.budgetMs;
  const runPeriod = periodOf(run.hour);
  const runHourText = timestampText(run.hour);

  const outcome: ChunkOutcome = { cursor: startCursor, users: 0, batches: 0, skipped: 0 };
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
        outcome.cursor = batch.endCursor;
        outcome.users += sincePage.users;
        outcome.skipped += sincePage.skipped;
        outcome.batches += sincePage.batches;
        Object.assign(sincePage, { users: 0, batches: 0, skipped: 0 });
      }
    } catch (error) {
      failure ??= { error };
    }
  };
  // Waits for the oldest statement first when the queue is full, so memory stays bounded and writes keep order.
  const send = async (unsorted: SnapshotBatch) => {
    if (inFlight.length >= MAX_UPSERTS_IN_FLIGHT) await settleOldest();
    if (failure) return;
    const batch = unsorted.inKeyOrder();
    const write = upsertBatch(db, batch);
    // Observed here so a rejection is never "unhandled" while an earlier batch is still being awaited.
    write.catch(() => {});
    inFlight.push({ batch, write });
  };

  let batch = new SnapshotBatch();
  batch.endCursor = startCursor;
  let pageStart = startCursor;
  let nextPage: Promise<Page> | null = readPage(redis, startCursor, settings.scanCount);
  try {
    while (nextPage && !failure) {
      const page: Page = await nextPage;
      // Read ahead: the next page's SCAN and MGET travel while this page's rows are written.
      nextPage = page.next === "0" || budgetSpent() ? null : readPage(redis, page.next, settings.scanCount);
      nextPage?.catch(() => {});

      if (batch.size > 0 && batch.size + page.keys.length > settings.batchSize) {
        // This page may not fit: the batch so far holds whole pages only, so it goes first and moves the cursor.
        await send(batch);
        batch = new SnapshotBatch();
        batch.endCursor = pageStart;
      }
      for (let i = 0; i < page.keys.length && !failure; i++) {
        const parsed = parseQuotaKey(page.keys[i]);
        const count = toCount(page.values[i]);
        const hour = parsed && isPeriod(parsed.period) ? snapshotHourFor(parsed.period, runPeriod, runHourText) : null;
        if (!parsed || hour === null || count === null || parsed.userId.includes(SEPARATOR)) {
          // Expired between SCAN and MGET, not an integer, not a month we may write yet, or not a user id.
          batch.skipped += 1;
          continue;
        }
        batch.add(parsed.userId, parsed.period, hour, count);
        if (batch.size >= settings.batchSize && i < page.keys.length - 1) {
          // A page larger than a batch is written in parts. A part holds rows of this page only (the batch before
          // it was sent above), and neither moves the cursor nor counts until the page's last part commits: a
          // retry resumes at the page's start and writes the earlier parts again.
          const rest = new SnapshotBatch();
          rest.endCursor = batch.endCursor;
          batch.closesPage = false;
          await send(batch);
          batch = rest;
        }
      }
      batch.endCursor = page.next;
      batch.closesPage = true;
      pageStart = page.next;

      if (batch.size >= settings.batchSize || !nextPage) {
        await send(batch);
        batch = new SnapshotBatch();
        batch.endCursor = page.next;
      }
    }
  } catch (error) {
    // Redis failed; whatever was already sent to Postgres may still commit and is accounted for below.
    failure ??= { error };
  }
  while (inFlight.length > 0) await settleOldest();
  if (failure) outcome.error = failure.error;
  return outcome;
}

type RunRow = {
  id: string;
  hour: Date;
  status: string;
  cursor: string | null;
  chunks: number;
  users: number;
  batches: number;
  skipped: number;
};

const runSelect = {
  id: true,
  hour: true,
  status: true,
  cursor: true,
  chunks: true,
  users: true,
  batches: true,
  skipped: true,
} as const;

function resultOf(run: RunRow, extra: Partial<SyncResult> = {}): SyncResult {
  const status = run.status === "succeeded" || run.status === "failed" ? run.status : "continued";
  return {
    runId: run.id,
    status,
    cursor: run.cursor ?? "0",
    users: run.users,
    batches: run.batches,
    skipped: run.skipped,
    chunks: run.chunks,
    ...extra,
  };
}

/**
 * Takes the run for this delivery, or says the delivery is a duplicate. The claim is one conditional UPDATE, so
 * of two concurrent deliveries of the same continuation only one proceeds (no forked chains of continuations).
 *
 * - A continuation may take a run that is waiting for exactly its cursor ("continued"), or one whose last chunk
 *   failed or was cut off ("failed"/"running") — then it resumes from the run's saved cursor, not its own.
 * - A redelivered scheduled message may take its run back only when that run failed or was cut off; once the run
 *   has handed over to a continuation or finished, the redelivery is acknowledged and nothing is done.
 * A "running" run is taken over because QStash only redelivers when the earlier attempt gave no answer: it either
 * died (a serverless time-out) or is about to end; repeating its batches is harmless, skipping them is not.
 */
async function claimRun(db: Db, run: RunRow, continuationCursor: string | undefined): Promise<boolean> {
  const resumable = [{ status: { in: ["running", "failed"] } }];
  const waitingForThis = continuationCursor !== undefined ? [{ status: "continued", cursor: continuationCursor }] : [];
  const { count } = await db.syncRun.updateMany({
    where: { id: run.id, OR: [...resumable, ...waitingForThis] },
    data: { status: "running", error: null, finishedAt: null },
  });
  return count === 1;
}

async function findOrStartRun(db: Db, options: SyncOptions): Promise<{ run: RunRow; duplicate: boolean }> {
  if (options.runId) {
    const run = await db.syncRun.findUnique({ where: { id: options.runId }, select: runSelect });
    if (!run) throw new SyncRunNotFoundError(options.runId);
    const claimed = await claimRun(db, run, options.cursor ?? run.cursor ?? "0");
    return { run, duplicate: !claimed };
  }
  if (options.messageId) {
    const run = await db.syncRun.findFirst({
      where: { messageId: options.messageId },
      orderBy: { startedAt: "desc" },
      select: runSelect,
    });
    if (run) return { run, duplicate: !(await claimRun(db, run, undefined)) };
  }
  const run = await db.syncRun.create({
    data: { messageId: options.messageId ?? null, hour: hourBucket(options.now ?? new Date()), cursor: "0" },
    select: runSelect,
  });
  return { run, duplicate: false };
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Prisma's messages carry the whole statement; the first line says what went wrong.
  return message.trim().split("\n").slice(-1)[0].slice(0, 1000);
}

/**
 * Runs one chunk of the sync (the whole sync when no budget is given) and records it in `SyncRun`.
 *
 * Returns "continued" with the cursor to resume from when the budget ran out: the caller publishes a continuation
 * with `{ runId, cursor }`. Returns "failed" when Redis or Postgres failed: the run keeps the cursor after the last
 * committed batch, so a retry of the same delivery (same message id, or the same continuation) resumes from there.
 */
export async function syncUsageSnapshots(
  deps: { redis: Redis; db: Db },
  options: SyncOptions = {},
): Promise<SyncResult> {
  const { db } = deps;
  const { run, duplicate } = await findOrStartRun(db, options);
  if (duplicate) {
    const current = await db.syncRun.findUnique({ where: { id: run.id }, select: runSelect });
    return resultOf(current ?? run, { duplicate: true });
  }

  const outcome = await syncChunk(deps, run, run.cursor ?? "0", {
    budgetMs: options.budgetMs ?? Number.POSITIVE_INFINITY,
    scanCount: options.scanCount ?? DEFAULT_SCAN_COUNT,
    batchSize: options.batchSize ?? DEFAULT_BATCH_SIZE,
  });

  const status = outcome.error !== undefined ? "failed" : outcome.cursor === "0" ? "succeeded" : "continued";
  const error = outcome.error !== undefined ? describe(outcome.error) : undefined;
  const totals = {
    users: run.users + outcome.users,
    batches: run.batches + outcome.batches,
    skipped: run.skipped + outcome.skipped,
    chunks: run.chunks + 1,
  };
  const data = {
    status,
    cursor: outcome.cursor,
    ...totals,
    error: error ?? null,
    finishedAt: status === "continued" ? null : new Date(),
  };
  try {
    await db.syncRun.update({ where: { id: run.id }, data, select: { id: true } });
  } catch (recordError) {
    // Postgres is down: the run stays "running" at its previous cursor, and the caller's retry resumes from
    // there (a few batches are written twice, which the upsert makes harmless).
    if (status !== "failed") throw recordError;
  }
  return { runId: run.id, status, cursor: outcome.cursor, ...totals, ...(error ? { error } : {}) };
}

/** Marks a run failed after the fact: the caller could not publish its continuation. */
export async function markSyncRunFailed(db: Db, runId: string, error: string): Promise<void> {
  await db.syncRun.update({
    where: { id: runId },
    data: { status: "failed", error: error.slice(0, 1000), finishedAt: new Date() },
    select: { id: true },
  });
}
