-- API answers per account, hour and status (200, 304, 400, 401, 404, 429, 503), copied by the hourly sync from the
-- Redis hashes `outcomes:{userId}:{hour}` (app/models/request-outcomes.server.ts, docs/outcomes.md).
--
-- Integrity as for UsageSnapshot (decision 0008), not a foreign key: the sync writes a row per user, hour and status
-- every hour, and a foreign key's per-row lookup and FOR KEY SHARE lock on "User" is what that decision removed.
-- Writers take the snapshot lock in share mode and JOIN "User" under it; deleting users takes it in exclusive mode
-- (the UsageSnapshot trigger already does, in the same transaction) and deletes these rows too.
CREATE TABLE "OutcomeSnapshot" (
    "userId" TEXT NOT NULL,
    "hour" TIMESTAMP(3) NOT NULL,
    "status" INTEGER NOT NULL,
    "count" INTEGER NOT NULL,
    "syncedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "OutcomeSnapshot_pkey" PRIMARY KEY ("userId", "hour", "status")
);

-- Writers other than upsert_outcome_snapshots: one anti-join per statement, under the share lock.
CREATE FUNCTION outcome_snapshot_check_users() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  orphan text;
BEGIN
  IF current_setting('sheetmeter.snapshot_users_joined', true) = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock_shared(usage_snapshot_user_lock_key());
  SELECT n."userId" INTO orphan
  FROM inserted_snapshots n
  WHERE NOT EXISTS (SELECT FROM "User" u WHERE u."id" = n."userId")
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'OutcomeSnapshot names user "%", which does not exist', orphan
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'OutcomeSnapshot_userId_fkey';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "OutcomeSnapshot_user_exists"
  AFTER INSERT ON "OutcomeSnapshot" REFERENCING NEW TABLE AS inserted_snapshots
  FOR EACH STATEMENT EXECUTE FUNCTION outcome_snapshot_check_users();

CREATE TRIGGER "OutcomeSnapshot_userId_fixed"
  BEFORE UPDATE OF "userId" ON "OutcomeSnapshot" FOR EACH ROW
  WHEN (OLD."userId" IS DISTINCT FROM NEW."userId") EXECUTE FUNCTION usage_snapshot_refuse_new_user('userId', 'OutcomeSnapshot_userId_fixed');

-- Deleting users deletes their outcome rows in the same transaction, after the batches in flight committed.
CREATE FUNCTION outcome_snapshot_delete_for_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock(usage_snapshot_user_lock_key());
  DELETE FROM "OutcomeSnapshot" s USING deleted_users d WHERE s."userId" = d."id";
  RETURN NULL;
END $$;

CREATE TRIGGER "User_delete_outcome_snapshots"
  AFTER DELETE ON "User" REFERENCING OLD TABLE AS deleted_users
  FOR EACH STATEMENT EXECUTE FUNCTION outcome_snapshot_delete_for_users();

CREATE FUNCTION outcome_snapshot_truncate_for_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(usage_snapshot_user_lock_key());
  TRUNCATE "OutcomeSnapshot";
  RETURN NULL;
END $$;

CREATE TRIGGER "User_truncate_outcome_snapshots"
  AFTER TRUNCATE ON "User" FOR EACH STATEMENT EXECUTE FUNCTION outcome_snapshot_truncate_for_users();

-- The sync's writer: one statement per batch, rows of users deleted since dropped by the JOIN (taken under the share
-- lock, so a deletion in flight has committed by then). Counts only grow within an hour (GREATEST): a re-delivered
-- run or a hash recreated after a Redis loss never lowers a row. Columns come as comma-separated text like
-- upsert_usage_snapshots'. Returns the rows written.
CREATE FUNCTION upsert_outcome_snapshots(user_ids text, hours text, statuses text, counts text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  written integer;
BEGIN
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock_shared(usage_snapshot_user_lock_key());
  PERFORM set_config('sheetmeter.snapshot_users_joined', 'on', true);
  INSERT INTO "OutcomeSnapshot" ("userId", "hour", "status", "count", "syncedAt")
  SELECT incoming."userId", incoming."hour", incoming."status", incoming."count", now() AT TIME ZONE 'UTC'
  FROM unnest(
      string_to_array(user_ids, ','),
      string_to_array(hours, ',')::timestamp[],
      string_to_array(statuses, ',')::int[],
      string_to_array(counts, ',')::int[]
    ) AS incoming("userId", "hour", "status", "count")
  JOIN "User" ON "User"."id" = incoming."userId"
  ON CONFLICT ("userId", "hour", "status") DO UPDATE
    SET "count" = GREATEST("OutcomeSnapshot"."count", EXCLUDED."count"), "syncedAt" = EXCLUDED."syncedAt";
  GET DIAGNOSTICS written = ROW_COUNT;
  PERFORM set_config('sheetmeter.snapshot_users_joined', 'off', true);
  RETURN written;
END $$;

-- A 401 is credited to the account whose key has the presented key's display prefix (docs/outcomes.md): looked up
-- by prefix, off the answer's path.
CREATE INDEX "ApiKey_prefix_idx" ON "ApiKey"("prefix");
