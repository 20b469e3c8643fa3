-- Snapshots name their user without a foreign key; triggers and one advisory lock keep the same rule, set-based.
-- Why: the hourly sync inserts one snapshot per user and hour, up to a million an hour. The foreign key checked each
-- row with a lookup of its own that also took a FOR KEY SHARE lock on the user's row, dirtying (and WAL-logging)
-- every "User" page once an hour; at a million users that was the largest cost left in the sync. See
-- docs/decisions/0008-snapshot-integrity-without-a-foreign-key.md.
--
-- The rule kept: when a user's deletion commits, none of their snapshots remain, and no snapshot can name a user
-- that does not exist. Writers of snapshots hold the lock below in share mode, deletions of users in exclusive
-- mode, so a deletion waits for snapshot batches in flight (then removes what they wrote), and a batch that starts
-- after a deletion sees the user gone. Both sides require READ COMMITTED: each statement after the lock must see
-- what committed while it waited.

-- The advisory lock key shared by snapshot writers (share mode) and user deletions (exclusive mode).
CREATE FUNCTION usage_snapshot_user_lock_key() RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT 7307162023::bigint $$;

CREATE FUNCTION usage_snapshot_require_read_committed() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'users and usage snapshots are written at READ COMMITTED (this transaction is %)',
      current_setting('transaction_isolation') USING ERRCODE = 'feature_not_supported';
  END IF;
END $$;

-- Every statement that inserts snapshots: one anti-join over the inserted rows, not a lookup and a row lock each.
CREATE FUNCTION usage_snapshot_check_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  orphan text;
BEGIN
  -- upsert_usage_snapshots' own INSERT: its JOIN "User", run under the lock, already proved every user exists.
  IF current_setting('sheetmeter.snapshot_users_joined', true) = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM usage_snapshot_require_read_committed();
  -- Taken before the check (a fresh snapshot after it): a deletion that was in flight has committed by then.
  PERFORM pg_advisory_xact_lock_shared(usage_snapshot_user_lock_key());
  SELECT n."userId" INTO orphan
  FROM inserted_snapshots n
  WHERE NOT EXISTS (SELECT FROM "User" u WHERE u."id" = n."userId")
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'UsageSnapshot names user "%", which does not exist', orphan
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'UsageSnapshot_userId_fkey';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "UsageSnapshot_user_exists"
  AFTER INSERT ON "UsageSnapshot" REFERENCING NEW TABLE AS inserted_snapshots
  FOR EACH STATEMENT EXECUTE FUNCTION usage_snapshot_check_users();

-- The sync's batch writer (usage-snapshot-writer.server.ts): one call is one statement and one round trip, yet the
-- share lock is taken before the INSERT reads "User" — in a function, each statement takes its own snapshot, so a
-- deletion that was in flight has committed by then and its user drops out of the JOIN. Counters of users deleted
-- since are dropped, not an error; returns how many snapshots were written. Columns come as comma-separated text
-- (cheaper to send than arrays; user ids never contain a comma).
CREATE FUNCTION upsert_usage_snapshots(user_ids text, periods text, hours text, counts text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  written integer;
BEGIN
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock_shared(usage_snapshot_user_lock_key());
  -- Spares this INSERT the insert trigger's second look at "User" (an anti-join per batch), for this statement only.
  PERFORM set_config('sheetmeter.snapshot_users_joined', 'on', true);
  INSERT INTO "UsageSnapshot" ("userId", "period", "hour", "used", "syncedAt")
  SELECT incoming."userId", incoming."period", incoming."hour", incoming."used", now() AT TIME ZONE 'UTC'
  FROM unnest(
      string_to_array(user_ids, ','),
      string_to_array(periods, ','),
      string_to_array(hours, ',')::timestamp[],
      string_to_array(counts, ',')::int[]
    ) AS incoming("userId", "period", "hour", "used")
  JOIN "User" ON "User"."id" = incoming."userId"
  ON CONFLICT ("userId", "hour") DO UPDATE
    SET "used" = GREATEST("UsageSnapshot"."used", EXCLUDED."used"), "syncedAt" = EXCLUDED."syncedAt";
  GET DIAGNOSTICS written = ROW_COUNT;
  PERFORM set_config('sheetmeter.snapshot_users_joined', 'off', true);
  RETURN written;
END $$;

-- A snapshot never moves to another user (the insert check would not see it), nor does a user change id.
CREATE FUNCTION usage_snapshot_refuse_new_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.% cannot change', TG_TABLE_NAME, TG_ARGV[0]
    USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[1];
END $$;

CREATE TRIGGER "UsageSnapshot_userId_fixed"
  BEFORE UPDATE OF "userId" ON "UsageSnapshot" FOR EACH ROW
  WHEN (OLD."userId" IS DISTINCT FROM NEW."userId") EXECUTE FUNCTION usage_snapshot_refuse_new_user('userId', 'UsageSnapshot_userId_fixed');

CREATE TRIGGER "User_id_fixed"
  BEFORE UPDATE OF "id" ON "User" FOR EACH ROW
  WHEN (OLD."id" IS DISTINCT FROM NEW."id") EXECUTE FUNCTION usage_snapshot_refuse_new_user('id', 'User_id_fixed');

-- Deleting users deletes their snapshots in the same transaction, after the batches in flight committed.
CREATE FUNCTION usage_snapshot_delete_for_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock(usage_snapshot_user_lock_key());
  DELETE FROM "UsageSnapshot" s USING deleted_users d WHERE s."userId" = d."id";
  RETURN NULL;
END $$;

CREATE TRIGGER "User_delete_snapshots"
  AFTER DELETE ON "User" REFERENCING OLD TABLE AS deleted_users
  FOR EACH STATEMENT EXECUTE FUNCTION usage_snapshot_delete_for_users();

CREATE FUNCTION usage_snapshot_truncate_for_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(usage_snapshot_user_lock_key());
  TRUNCATE "UsageSnapshot";
  RETURN NULL;
END $$;

CREATE TRIGGER "User_truncate_snapshots"
  AFTER TRUNCATE ON "User" FOR EACH STATEMENT EXECUTE FUNCTION usage_snapshot_truncate_for_users();

ALTER TABLE "UsageSnapshot" DROP CONSTRAINT "UsageSnapshot_userId_fkey";

-- Every reader goes by (userId, hour), the primary key: the dashboard's ranges, and a month's latest count
-- (hours of the month, newest first). A second index only made each of the sync's inserts cost one more.
DROP INDEX "UsageSnapshot_userId_period_idx";

-- Months whose final counts have been copied from Redis: a finished month's counters linger in Redis for a grace
-- week, and without this each hourly run would read and write them again.
CREATE TABLE "UsagePeriodFinal" (
    "period" TEXT NOT NULL,
    "runId" TEXT NOT NULL,
    "recordedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "UsagePeriodFinal_pkey" PRIMARY KEY ("period")
);
