import { randomUUID } from "node:crypto";
import { Prisma } from "~/generated/prisma/client";
import type { Db } from "~/utils/db.server";
import { hourBucket } from "~/utils/period";

/**
 * The `SyncRun` ledger: which worker holds a run (its lease), which step of the run a delivery may work on, where
 * the run resumes, and the totals of its committed pages. The sync itself lives in usage-sync.server; this module
 * only reads and writes the rows that record it.
 *
 * Every write that decides something is one conditional statement, so Postgres arbitrates between concurrent
 * workers: a claim succeeds only at the delivery's own step and only on a free or lapsed lease; progress and the end
 * of a chunk are written only while the worker still holds its lease. Lease times come from Postgres's clock, the
 * one clock all workers share.
 */

/** How a chunk of a run ended: the whole keyspace covered, handed over to a continuation, or stopped by a failure. */
export type ChunkStatus = "succeeded" | "continued" | "failed";

/**
 * How long a worker holds a run without showing progress. It is renewed with every committed page (a page takes
 * well under a second), so it only runs out when a worker died or stalled; then another delivery may take over.
 * Long enough for a slow batch under load, short enough that a cut-off chunk resumes within a QStash retry or two.
 */
export const DEFAULT_LEASE_MS = 30_000;

export class SyncRunNotFoundError extends Error {
  constructor(runId: string) {
    super(`Sync run ${runId} does not exist.`);
  }
}

/** The worker's lease was taken over: what it still had to write belongs to the new owner. */
export class SyncLeaseLostError extends Error {
  constructor(runId: string) {
    super(`Sync run ${runId} was taken over by another worker.`);
  }
}

export interface SyncRunTotals {
  users: number;
  batches: number;
  skipped: number;
  chunks: number;
}

export interface SyncRunState extends SyncRunTotals {
  id: string;
  hour: Date;
  status: string;
  cursor: string | null;
  step: number;
}

/** What a continuation names: the run, and which of its steps the message is for. */
export interface SyncStep {
  runId: string;
  step: number;
}

export interface ClaimRequest {
  /** When the run starts; fixes its hour bucket. Ignored when resuming a run, which keeps its own hour. */
  now?: Date;
  /** Work on this step of this run (a continuation). Without it the delivery starts a run, at step 0. */
  continuation?: SyncStep;
  /** Upstash-Message-Id of the delivery; a redelivery of the same scheduled message works on the same run. */
  messageId?: string | null;
  /** How long the lease lasts without progress (DEFAULT_LEASE_MS). */
  leaseMs?: number;
}

/** The right to work on one step of one run, until it lapses or is handed back. */
export interface SyncLease {
  runId: string;
  step: number;
  owner: string;
  leaseMs: number;
}

export type SyncClaim =
  | { kind: "claimed"; run: SyncRunState; lease: SyncLease }
  /** The run has moved past the delivery's step, or finished: nothing to do. */
  | { kind: "duplicate"; run: SyncRunState; step: number }
  /** Another worker holds a live lease on this step: the delivery should come back later. */
  | { kind: "busy"; run: SyncRunState; retryAfterMs: number };

type RunKey = { id: string } | { messageId: string };

const runColumns = Prisma.sql`"id", "hour", "status", "cursor", "step", "chunks", "users", "batches", "skipped"`;
const whereKey = (key: RunKey) =>
  "id" in key ? Prisma.sql`"id" = ${key.id}` : Prisma.sql`"messageId" = ${key.messageId}`;
const leaseUntil = (leaseMs: number) => Prisma.sql`(now() AT TIME ZONE 'UTC') + ${leaseMs} * interval '1 millisecond'`;

/**
 * Takes `step` of the run for a new owner if no live lease holds it. A "running" run is among those that can be
 * taken: a worker that was cut off leaves its run running under a lease that lapses, and only a live lease refuses.
 */
async function takeStep(db: Db, key: RunKey, step: number, lease: Omit<SyncLease, "runId">) {
  const rows = await db.$queryRaw<SyncRunState[]>`
    UPDATE "SyncRun"
    SET "status" = 'running', "error" = NULL, "finishedAt" = NULL,
        "leaseOwner" = ${lease.owner}, "leaseExpiresAt" = ${leaseUntil(lease.leaseMs)}
    WHERE ${whereKey(key)} AND "step" = ${step} AND "status" IN ('running', 'continued', 'failed')
      AND ("leaseOwner" IS NULL OR "leaseExpiresAt" <= (now() AT TIME ZONE 'UTC'))
    RETURNING ${runColumns}`;
  return rows[0];
}

async function readRun(db: Db, key: RunKey) {
  const rows = await db.$queryRaw<(SyncRunState & { leaseLeftMs: number | null })[]>`
    SELECT ${runColumns},
      CASE WHEN "leaseOwner" IS NULL THEN NULL
        ELSE GREATEST(0, EXTRACT(EPOCH FROM "leaseExpiresAt" - (now() AT TIME ZONE 'UTC')) * 1000)::float8
      END AS "leaseLeftMs"
    FROM "SyncRun" WHERE ${whereKey(key)}`;
  return rows[0];
}

/**
 * Decides what this delivery may do with its run: work on it under a fresh lease, leave it (the run moved past
 * its step), or come back later (another worker is on that step now). A scheduled message is step 0 of the run it
 * started; a redelivery of it finds that run by its message id.
 */
export async function claimSyncRun(db: Db, request: ClaimRequest): Promise<SyncClaim> {
  const hour = hourBucket(request.now ?? new Date());
  let key: RunKey;
  let step = 0;
  if (request.continuation) {
    key = { id: request.continuation.runId };
    step = request.continuation.step;
  } else if (request.messageId) {
    // Two concurrent first deliveries of one message both get here; the unique message id keeps one row.
    await db.syncRun.createMany({ data: [{ messageId: request.messageId, hour, cursor: "0" }], skipDuplicates: true });
    key = { messageId: request.messageId };
  } else {
    key = await db.syncRun.create({ data: { hour, cursor: "0" }, select: { id: true } });
  }

  const lease = { step, owner: randomUUID(), leaseMs: request.leaseMs ?? DEFAULT_LEASE_MS };
  const taken = await takeStep(db, key, step, lease);
  if (taken) return { kind: "claimed", run: taken, lease: { ...lease, runId: taken.id } };

  const found = await readRun(db, key);
  if (!found) throw new SyncRunNotFoundError("id" in key ? key.id : `of message ${key.messageId}`);
  const { leaseLeftMs, ...run } = found;
  if (run.step > step || run.status === "succeeded") return { kind: "duplicate", run, step };
  // At this step under a live lease, or (a lease that lapsed a moment ago, a step not reached yet) soon workable.
  return { kind: "busy", run, retryAfterMs: leaseLeftMs ?? 0 };
}

export async function findSyncRun(db: Db, runId: string): Promise<SyncRunState | null> {
  return (await readRun(db, { id: runId })) ?? null;
}

export interface PageProgress {
  /** Where the run resumes once this page (and every one before it) committed. */
  cursor: string;
  users: number;
  batches: number;
  skipped: number;
}

/**
 * Records that a page committed, and renews the lease. The totals are added in the statement, never computed from
 * a value read earlier, so a worker that was taken over cannot write back stale totals — and it cannot write at
 * all: its lease owner no longer matches, and it learns so here (SyncLeaseLostError) and stops.
 */
export async function recordPageProgress(db: Db, lease: SyncLease, page: PageProgress): Promise<void> {
  const updated = await db.$executeRaw`
    UPDATE "SyncRun"
    SET "cursor" = ${page.cursor}, "users" = "users" + ${page.users}, "batches" = "batches" + ${page.batches},
        "skipped" = "skipped" + ${page.skipped}, "leaseExpiresAt" = ${leaseUntil(lease.leaseMs)}
    WHERE "id" = ${lease.runId} AND "leaseOwner" = ${lease.owner}`;
  if (updated !== 1) throw new SyncLeaseLostError(lease.runId);
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Prisma's messages carry the whole statement; the first line says what went wrong.
  return message.trim().split("\n").slice(-1)[0].slice(0, 1000);
}

export interface ChunkEnding {
  /** Where the chunk stopped; "0" once the whole keyspace has been covered (it decides the status only). */
  cursor: string;
  error?: unknown;
}

export interface RecordedChunk extends SyncRunTotals {
  status: ChunkStatus;
  cursor: string;
  /** The step the run is on now: one more than the chunk's when it handed over to a continuation. */
  step: number;
  error?: string;
}

/**
 * Ends the worker's chunk and gives the lease back: the run succeeded, waits for the continuation of the next step,
 * or failed at the cursor after its last recorded page (a retry of the same delivery resumes there). Only the lease
 * holder can do this, so of two workers on one step only one can hand the run on — the chain cannot fork.
 *
 * The cursor and totals stay as the last recorded page left them: they move together, in one statement, and a
 * progress write whose reply was lost may still have committed, so the chunk's own cursor can lag behind the row's;
 * writing it back would make the retry count that page again.
 */
export async function finishSyncChunk(
  db: Db,
  lease: SyncLease,
  ending: ChunkEnding,
  totalsIfUnrecorded: SyncRunTotals,
): Promise<RecordedChunk> {
  const status: ChunkStatus = ending.error !== undefined ? "failed" : ending.cursor === "0" ? "succeeded" : "continued";
  const error = ending.error !== undefined ? describe(ending.error) : undefined;
  let rows: (SyncRunTotals & { step: number; cursor: string })[];
  try {
    rows = await db.$queryRaw`
      UPDATE "SyncRun"
      SET "status" = ${status}, "chunks" = "chunks" + 1,
          "step" = "step" + ${status === "continued" ? 1 : 0}, "error" = ${error ?? null},
          "finishedAt" = ${status === "continued" ? null : Prisma.sql`(now() AT TIME ZONE 'UTC')`},
          "leaseOwner" = NULL, "leaseExpiresAt" = NULL
      WHERE "id" = ${lease.runId} AND "leaseOwner" = ${lease.owner}
      RETURNING "cursor", "step", "chunks", "users", "batches", "skipped"`;
  } catch (recordError) {
    // Postgres is down: the run stays "running" at the cursor of its last recorded page, under a lease that
    // lapses, after which the caller's retry resumes from there (a few batches are written twice, harmlessly).
    if (status !== "failed") throw recordError;
    return { status, cursor: ending.cursor, step: lease.step, ...totalsIfUnrecorded, ...(error ? { error } : {}) };
  }
  if (rows.length === 0) throw new SyncLeaseLostError(lease.runId);
  const [{ cursor, step, ...totals }] = rows;
  return { status, cursor, step, ...totals, ...(error ? { error } : {}) };
}

/**
 * Notes on a run waiting for its continuation that the continuation could not be published; the run stays
 * "continued", so QStash's retry of the delivery that ran the chunk publishes it again (see syncUsageSnapshots).
 */
export async function noteUnpublishedContinuation(db: Db, next: SyncStep, reason: string): Promise<void> {
  await db.syncRun.updateMany({
    where: { id: next.runId, step: next.step, status: "continued" },
    data: { error: reason.slice(0, 1000) },
  });
}

export interface LastSyncRun {
  id: string;
  status: string;
  startedAt: Date;
  finishedAt: Date | null;
  users: number;
  error: string | null;
}

/**
 * The latest run that reached an end, succeeded or failed, for the dashboard's "last synced" line. A run still in
 * progress (or handed over to a continuation) is not "the last sync" yet: showing it would flash an unfinished
 * count every hour.
 */
export function getLastSyncRun(db: Db): Promise<LastSyncRun | null> {
  return db.syncRun.findFirst({
    where: { status: { in: ["succeeded", "failed"] }, finishedAt: { not: null } },
    orderBy: { finishedAt: "desc" },
    select: { id: true, status: true, startedAt: true, finishedAt: true, users: true, error: true },
  });
}

/**
 * The latest month whose final counts a run has copied, or null. Counters of that month and earlier ones still in
 * Redis (they outlive their month by a grace week) are passed over: their snapshot already holds the final value.
 */
export async function latestFinalPeriod(db: Db): Promise<string | null> {
  const row = await db.usagePeriodFinal.findFirst({ orderBy: { period: "desc" }, select: { period: true } });
  return row?.period ?? null;
}

/**
 * Records that `period` is final: a run that started after the month ended covered the whole keyspace, so every
 * counter of the month was written with its final value (no call counts into a month after it ends). Recording it
 * twice (two runs finishing together) keeps the first.
 */
export async function recordFinalPeriod(db: Db, period: string, runId: string): Promise<void> {
  await db.usagePeriodFinal.createMany({ data: [{ period, runId }], skipDuplicates: true });
}
