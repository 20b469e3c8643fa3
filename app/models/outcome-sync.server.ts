import type { Redis } from "@upstash/redis";
import { hashEntries } from "~/utils/redis.server";
import type { Db } from "~/utils/db.server";
import { isOutcomeStatus, OUTCOMES_KEY_PATTERN, parseOutcomesKey } from "./request-outcomes.server";

/**
 * The hourly sync's outcome step: copies every live outcome tally (`outcomes:{userId}:{hour}`, a hash per account
 * and hour, field = status) into OutcomeSnapshot. Separate from the usage counters' sync on purpose: its own SCAN
 * pattern, its own table, its own writer, called from one place at the end of a sync run (usage-sync.server.ts).
 *
 * A tally lives a day after its hour (request-outcomes.server.ts), so every run copies the last day's hours again;
 * the writer keeps the greater count, so a rerun, a re-delivered run or a run that was cut short never lowers a row,
 * and the hours a run did not reach are copied by the next one.
 */

export interface OutcomeSyncOptions {
  /** Stop starting new SCAN pages after this many milliseconds (at least one page is always processed). */
  budgetMs?: number;
  scanCount?: number;
}

export interface OutcomeSyncResult {
  /** Tally hashes read. */
  hashes: number;
  /** OutcomeSnapshot rows written (rows of users deleted since are dropped, not counted). */
  rows: number;
  /** Hashes or fields that did not parse. */
  skipped: number;
  /** Whether the SCAN went round the whole keyspace (false: the budget ran out first). */
  complete: boolean;
}

export const OUTCOME_SCAN_COUNT = 5_000;
// Hashes per script run: each run blocks Redis while it reads them, so a page is read in several runs.
const READ_CHUNK = 1_000;
const MAX_INT4 = 2_147_483_647;

const READ_HASHES_SCRIPT = `
local hashes = {}
for i = 1, #KEYS do hashes[i] = redis.call('HGETALL', KEYS[i]) end
return hashes
`;

/** Rows as the comma-separated columns `upsert_outcome_snapshots` takes (user ids never contain a comma). */
class OutcomeRows {
  userIds: string[] = [];
  hours: string[] = [];
  statuses: number[] = [];
  counts: number[] = [];
  get size() {
    return this.userIds.length;
  }
  add(userId: string, hour: Date, status: number, count: number) {
    this.userIds.push(userId);
    // Postgres `timestamp` (no zone) holds UTC here, as Prisma writes it.
    this.hours.push(hour.toISOString().replace("T", " ").replace("Z", ""));
    this.statuses.push(status);
    this.counts.push(count);
  }
}

async function writeRows(db: Db, rows: OutcomeRows): Promise<number> {
  if (rows.size === 0) return 0;
  const [result] = await db.$queryRaw<{ written: number }[]>`
    SELECT upsert_outcome_snapshots(
      ${rows.userIds.join(",")}::text,
      ${rows.hours.join(",")}::text,
      ${rows.statuses.join(",")}::text,
      ${rows.counts.join(",")}::text
    ) AS written`;
  return Number(result?.written ?? 0);
}

/** Copies the live outcome tallies into OutcomeSnapshot, page by page; memory is bounded by one page. */
export async function syncOutcomeSnapshots(
  deps: { redis: Redis; db: Db },
  options: OutcomeSyncOptions = {},
): Promise<OutcomeSyncResult> {
  const { redis, db } = deps;
  const started = performance.now();
  const budgetMs = options.budgetMs ?? Number.POSITIVE_INFINITY;
  const count = options.scanCount ?? OUTCOME_SCAN_COUNT;
  const result: OutcomeSyncResult = { hashes: 0, rows: 0, skipped: 0, complete: false };
  let cursor = "0";
  do {
    const [next, scanned] = await redis.scan(cursor, { match: OUTCOMES_KEY_PATTERN, count });
    cursor = String(next);
    const keys: string[] = [];
    const parsedKeys: { userId: string; hour: Date }[] = [];
    for (const key of scanned) {
      const parsed = parseOutcomesKey(key);
      // A user id with a comma could not travel in the writer's columns; no id the app makes has one.
      if (!parsed || parsed.userId.includes(",")) result.skipped += 1;
      else {
        keys.push(key);
        parsedKeys.push(parsed);
      }
    }
    if (keys.length > 0) {
      const pipeline = redis.pipeline();
      for (let start = 0; start < keys.length; start += READ_CHUNK) {
        pipeline.eval(READ_HASHES_SCRIPT, keys.slice(start, start + READ_CHUNK), []);
      }
      const replies = (await pipeline.exec<unknown[][]>()).flat();
      const rows = new OutcomeRows();
      replies.forEach((reply, i) => {
        const { userId, hour } = parsedKeys[i];
        result.hashes += 1;
        for (const [field, value] of hashEntries(reply)) {
          const status = Number(field);
          const n = typeof value === "number" ? value : Number(value);
          // A refund can leave a field at 0; nothing to copy.
          if (!isOutcomeStatus(status) || !Number.isSafeInteger(n) || n < 0 || n > MAX_INT4) result.skipped += 1;
          else if (n > 0) rows.add(userId, hour, status, n);
        }
      });
      result.rows += await writeRows(db, rows);
    }
    if (cursor === "0") result.complete = true;
  } while (cursor !== "0" && performance.now() - started < budgetMs);
  return result;
}
