import type { Db } from "~/utils/db.server";
import { hourBucket } from "~/utils/period";

/**
 * The `SyncRun` ledger: which delivery holds a run, where the run resumes, and how each of its chunks ended. The
 * sync itself lives in usage-sync.server; this module only reads and writes the rows that record it.
 */

/** How a chunk of a run ended: the whole keyspace covered, handed over to a continuation, or stopped by a failure. */
export type ChunkStatus = "succeeded" | "continued" | "failed";

export class SyncRunNotFoundError extends Error {
  constructor(runId: string) {
    super(`Sync run ${runId} does not exist.`);
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
}

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

export interface ClaimRequest {
  /** When the run starts; fixes its hour bucket. Ignored when resuming a run, which keeps its own hour. */
  now?: Date;
  /** Resume this run (a continuation). */
  runId?: string;
  /** The cursor a continuation message carries: proves it is the continuation the run is waiting for. */
  cursor?: string;
  /** Upstash-Message-Id of the delivery; a redelivery of the same id resumes (or acknowledges) the same run. */
  messageId?: string | null;
}

/**
 * Takes a run for this delivery with one conditional UPDATE, so of two concurrent deliveries of the same
 * continuation only one proceeds (no forked chains of continuations).
 *
 * - A continuation may take a run that is waiting for exactly its cursor ("continued"), or one whose last chunk
 *   failed or was cut off ("failed"/"running") — then it resumes from the run's saved cursor, not its own.
 * - A redelivered scheduled message may take its run back only when that run failed or was cut off; once the run
 *   has handed over to a continuation or finished, the redelivery is acknowledged and nothing is done.
 * A "running" run is taken over because QStash only redelivers when the earlier attempt gave no answer: it either
 * died (a serverless time-out) or is about to end; repeating its batches is harmless, skipping them is not.
 */
async function takeRun(db: Db, runId: string, continuationCursor: string | undefined): Promise<boolean> {
  const resumable = [{ status: { in: ["running", "failed"] } }];
  const waitingForThis = continuationCursor !== undefined ? [{ status: "continued", cursor: continuationCursor }] : [];
  const { count } = await db.syncRun.updateMany({
    where: { id: runId, OR: [...resumable, ...waitingForThis] },
    data: { status: "running", error: null, finishedAt: null },
  });
  return count === 1;
}

/**
 * The run this delivery works on — resumed, taken back or newly started — or the run it duplicates, which the
 * caller must leave alone.
 */
export async function claimSyncRun(db: Db, request: ClaimRequest): Promise<{ run: SyncRunState; duplicate: boolean }> {
  if (request.runId) {
    const run = await db.syncRun.findUnique({ where: { id: request.runId }, select: runSelect });
    if (!run) throw new SyncRunNotFoundError(request.runId);
    const claimed = await takeRun(db, run.id, request.cursor ?? run.cursor ?? "0");
    return { run, duplicate: !claimed };
  }
  if (request.messageId) {
    const run = await db.syncRun.findFirst({
      where: { messageId: request.messageId },
      orderBy: { startedAt: "desc" },
      select: runSelect,
    });
    if (run) return { run, duplicate: !(await takeRun(db, run.id, undefined)) };
  }
  const run = await db.syncRun.create({
    data: { messageId: request.messageId ?? null, hour: hourBucket(request.now ?? new Date()), cursor: "0" },
    select: runSelect,
  });
  return { run, duplicate: false };
}

export function findSyncRun(db: Db, runId: string): Promise<SyncRunState | null> {
  return db.syncRun.findUnique({ where: { id: runId }, select: runSelect });
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // Prisma's messages carry the whole statement; the first line says what went wrong.
  return message.trim().split("\n").slice(-1)[0].slice(0, 1000);
}

export interface ChunkOutcome {
  /** Where the next chunk starts; "0" once the whole keyspace has been covered. */
  cursor: string;
  users: number;
  batches: number;
  skipped: number;
  error?: unknown;
}

export interface RecordedChunk extends SyncRunTotals {
  status: ChunkStatus;
  cursor: string;
  error?: string;
}

/**
 * Adds a chunk's outcome to its run. A failed chunk keeps the cursor after the last committed batch, so a retry of
 * the same delivery (same message id, or the same continuation) resumes from there.
 */
export async function recordSyncChunk(db: Db, run: SyncRunState, outcome: ChunkOutcome): Promise<RecordedChunk> {
  const status: ChunkStatus =
    outcome.error !== undefined ? "failed" : outcome.cursor === "0" ? "succeeded" : "continued";
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
  return { status, cursor: outcome.cursor, ...totals, ...(error ? { error } : {}) };
}

/** Marks a run failed after the fact: the caller could not publish its continuation. */
export async function markSyncRunFailed(db: Db, runId: string, error: string): Promise<void> {
  await db.syncRun.update({
    where: { id: runId },
    data: { status: "failed", error: error.slice(0, 1000), finishedAt: new Date() },
    select: { id: true },
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
