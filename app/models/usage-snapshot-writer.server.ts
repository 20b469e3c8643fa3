import type { Db } from "~/utils/db.server";

/**
 * The batch writer of the hourly sync: one `INSERT … SELECT FROM unnest(…) ON CONFLICT … DO UPDATE` per batch of
 * snapshots, keeping the greater of the stored and the incoming count. Usage within a month only grows, so a batch
 * written twice (a redelivered message, a retried chunk) never duplicates a row or lowers a value.
 */

// Columns travel as one delimited string each (see upsertSnapshotBatch).
const SEPARATOR = ",";

/** A user id containing the separator cannot be sent, and cannot be a real one either (ids are cuids). */
export function isWritableUserId(userId: string): boolean {
  return !userId.includes(SEPARATOR);
}

/** The per-key rows of a batch, as the column arrays `unnest` takes. */
export interface KeyRows {
  keyIds: string[];
  userIds: string[];
  periods: string[];
  hours: string[];
  used: number[];
}

const emptyKeyRows = (): KeyRows => ({ keyIds: [], userIds: [], periods: [], hours: [], used: [] });

/** The rows of one INSERT, as the column arrays `unnest` takes. */
export class SnapshotBatch {
  userIds: string[] = [];
  periods: string[] = [];
  hours: string[] = [];
  used: number[] = [];
  /**
   * Each row's sort key: the counter's name (`quota:{userId}:{period}`), in user order as its user id is. The
   * user id cut from it is a V8 "sliced string", a view into the name, and sorting those cost 2–3 times as much as
   * sorting the names themselves (flat strings, as JSON.parse made them).
   */
  sortKeys: string[] = [];
  /** Per-key rows, riding along with their users' rows (a user has a handful of keys; they are not counted in size). */
  keys: KeyRows = emptyKeyRows();
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

  add(userId: string, period: string, hour: string, used: number, sortKey = userId) {
    this.sortKeys.push(sortKey);
    this.userIds.push(userId);
    this.periods.push(period);
    this.hours.push(hour);
    this.used.push(used);
  }

  /** A key's count for the same hour as its user's row; a key id holding the separator cannot be sent and is dropped. */
  addKey(keyId: string, userId: string, period: string, hour: string, used: number) {
    if (keyId.includes(SEPARATOR)) return;
    this.keys.keyIds.push(keyId);
    this.keys.userIds.push(userId);
    this.keys.periods.push(period);
    this.keys.hours.push(hour);
    this.keys.used.push(used);
  }

  /**
   * The rows in (user, hour) order, each once. SCAN returns keys in hash order, so unsorted every row lands on a
   * random leaf of the snapshot and user indexes; in key order consecutive rows share leaf pages (about a third
   * less time per batch here), and concurrent statements lock rows in the same order, so they cannot deadlock
   * each other. SCAN may also return a key twice while Redis rehashes, and the same (user, hour) twice in one
   * statement would abort it ("ON CONFLICT DO UPDATE command cannot affect row a second time"); sorted, the
   * duplicates are neighbours.
   *
   * The rows' sort keys (their counters' names) are sorted by the engine's own string order (`sort()` without a
   * comparator), then each row found again by its key: a comparator function called ~11 times a row cost 1.8 s of
   * CPU per million rows here, the native sort 0.4 s. Names order as their user ids do (ids of one length, as cuids
   * are; where one id is a prefix of another the two may swap, which only costs locality: every writer uses the
   * same order). A batch where one user has two rows (a finished month's counter beside the current one, or a
   * repeated key) takes the comparator, which orders by user id and hour.
   */
  inKeyOrder(): SnapshotBatch {
    const sorted = new SnapshotBatch();
    sorted.skipped = this.skipped;
    sorted.endCursor = this.endCursor;
    sorted.closesPage = this.closesPage;
    sorted.keys = keyRowsInOrder(this.keys);
    const { userIds, hours, sortKeys } = this;
    const rowOf = new Map<string, number>();
    for (let i = 0; i < sortKeys.length; i++) rowOf.set(sortKeys[i], i);
    if (rowOf.size === sortKeys.length && new Set(userIds).size === userIds.length) {
      for (const sortKey of sortKeys.slice().sort()) {
        const i = rowOf.get(sortKey)!;
        sorted.add(userIds[i], this.periods[i], hours[i], this.used[i], sortKey);
      }
      return sorted;
    }
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
    for (const i of order) {
      const last = sorted.size - 1;
      if (last >= 0 && sorted.userIds[last] === userIds[i] && sorted.hours[last] === hours[i]) {
        sorted.used[last] = Math.max(sorted.used[last], this.used[i]);
        continue;
      }
      sorted.add(userIds[i], this.periods[i], hours[i], this.used[i], sortKeys[i]);
    }
    return sorted;
  }

  /**
   * A sorted window cut into statements of at most `size` users' rows each, in order: each part a contiguous range
   * of user ids (and of key ids for the per-key rows, which need not travel with their user's row). Only the last
   * part closes the window's pages and carries its skipped count: the earlier parts neither move the cursor nor
   * count until it commits, because a retry resumes at the window's start and writes them again.
   */
  inParts(size: number): SnapshotBatch[] {
    const count = Math.max(1, Math.ceil(this.size / size));
    const keyRows = this.keys.keyIds.length;
    const parts: SnapshotBatch[] = [];
    for (let p = 0; p < count; p++) {
      const part = new SnapshotBatch();
      const from = p * size;
      const to = Math.min(from + size, this.size);
      part.sortKeys = this.sortKeys.slice(from, to);
      part.userIds = this.userIds.slice(from, to);
      part.periods = this.periods.slice(from, to);
      part.hours = this.hours.slice(from, to);
      part.used = this.used.slice(from, to);
      const keysFrom = Math.floor((p * keyRows) / count);
      const keysTo = Math.floor(((p + 1) * keyRows) / count);
      const { keys } = this;
      part.keys = {
        keyIds: keys.keyIds.slice(keysFrom, keysTo),
        userIds: keys.userIds.slice(keysFrom, keysTo),
        periods: keys.periods.slice(keysFrom, keysTo),
        hours: keys.hours.slice(keysFrom, keysTo),
        used: keys.used.slice(keysFrom, keysTo),
      };
      const last = p === count - 1;
      part.closesPage = last && this.closesPage;
      part.endCursor = this.endCursor;
      part.skipped = last ? this.skipped : 0;
      parts.push(part);
    }
    return parts;
  }
}

/** Per-key rows in (key, hour) order, each once with its greatest count: the same reasons as the users' rows. */
function keyRowsInOrder(rows: KeyRows): KeyRows {
  const { keyIds, hours } = rows;
  if (keyIds.length === 0) return rows;
  const order = keyIds.map((_, i) => i);
  order.sort((a, b) =>
    keyIds[a] !== keyIds[b] ? (keyIds[a] < keyIds[b] ? -1 : 1) : hours[a] < hours[b] ? -1 : hours[a] > hours[b] ? 1 : 0,
  );
  const sorted = emptyKeyRows();
  for (const i of order) {
    const last = sorted.keyIds.length - 1;
    if (last >= 0 && sorted.keyIds[last] === keyIds[i] && sorted.hours[last] === hours[i]) {
      sorted.used[last] = Math.max(sorted.used[last], rows.used[i]);
      continue;
    }
    sorted.keyIds.push(keyIds[i]);
    sorted.userIds.push(rows.userIds[i]);
    sorted.periods.push(rows.periods[i]);
    sorted.hours.push(hours[i]);
    sorted.used.push(rows.used[i]);
  }
  return sorted;
}

/** `timestamp(3)` text in UTC, the way Prisma stores DateTime in a column without a time zone. */
export function snapshotHourText(date: Date): string {
  return date.toISOString().slice(0, 19).replace("T", " ");
}

/**
 * One statement per batch: `upsert_usage_snapshots` (migrations 20261202010000_snapshot_user_triggers and
 * 20261202020000_key_usage) writes the users' rows, with the limit in force, and their keys' rows; it takes the share
 * lock, then runs the INSERT … JOIN "User" … ON CONFLICT … GREATEST. The JOIN drops counters of users deleted since
 * (their keys linger until they expire); the function returns what was written, so the difference is what was
 * skipped.
 *
 * There is no foreign key to check each row (see docs/decisions/0008): the lock is what keeps a snapshot from
 * outliving its user. Inside the function the lock is taken before the INSERT takes its snapshot of "User", so a
 * deletion that was in flight has committed and its user drops out of the JOIN; a deletion that starts later waits
 * for this commit, then its trigger removes what this batch wrote. A function rather than `BEGIN; lock; INSERT;
 * COMMIT` because that is four round trips per batch, during which the batch's connection does no work.
 *
 * Each column travels as one delimited string that Postgres splits, not as a JS array: Prisma, the driver adapter
 * and `pg` each walk an array parameter element by element (~4 ms of CPU per 2 000-row batch here, against ~1 ms
 * for a join), and the copies Prisma's debug history keeps are four strings instead of 8 000 small ones.
 *
 * `set_config('synchronous_commit', 'off', true)` is `SET LOCAL` for the statement's own transaction: the commit
 * returns without waiting for its WAL flush. A crash of Postgres within a fraction of a second after it can lose the
 * last batches that were acknowledged — a lost snapshot is written again by the next hourly run (the counter is
 * still in Redis, and within a month it only grows, so the later value is at least as large); a crash never leaves
 * a batch half written or corrupt.
 */
export async function upsertSnapshotBatch(db: Db, batch: SnapshotBatch): Promise<number> {
  if (batch.size === 0) return 0;
  const { keys } = batch;
  const [{ written }] = await db.$queryRaw<{ written: number }[]>`
    SELECT upsert_usage_snapshots(
        ${batch.userIds.join(SEPARATOR)}::text,
        ${batch.periods.join(SEPARATOR)}::text,
        ${batch.hours.join(SEPARATOR)}::text,
        ${batch.used.join(SEPARATOR)}::text,
        ${keys.keyIds.join(SEPARATOR)}::text,
        ${keys.userIds.join(SEPARATOR)}::text,
        ${keys.periods.join(SEPARATOR)}::text,
        ${keys.hours.join(SEPARATOR)}::text,
        ${keys.used.join(SEPARATOR)}::text
      ) AS written
    FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit`;
  return written;
}
