-- Usage per API key, and the limit in force with each snapshot.
--
-- The quota script counts every call against its key too (a Redis hash per user and month); the hourly sync copies
-- those counts here, in the same statement as the user's snapshot, with the same rule: (key, hour) once, the greater
-- count kept. Integrity follows decision 0008 rather than foreign keys, for the same reason (a lookup and a row lock
-- per inserted row, every hour): the rows written by `upsert_usage_snapshots` come from a JOIN on "ApiKey" taken
-- under the snapshot lock (share mode), and deleting keys takes the lock in exclusive mode, then deletes their
-- snapshots. Deleting a user deletes their keys (ON DELETE CASCADE), which deletes the keys' snapshots.

-- The user's monthly limit when the sync wrote the hour (the first sync of the hour wins, so a finished month's
-- last hour, rewritten in the next month, keeps the limit it had). NULL for rows written before this migration;
-- readers fall back to the current limit.
ALTER TABLE "UsageSnapshot" ADD COLUMN "limit" INTEGER;

CREATE TABLE "KeyUsageSnapshot" (
    "keyId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "period" TEXT NOT NULL,
    "hour" TIMESTAMP(3) NOT NULL,
    "used" INTEGER NOT NULL,
    "syncedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "KeyUsageSnapshot_pkey" PRIMARY KEY ("keyId", "hour")
);

-- Writers other than the sync's function: one anti-join per statement, under the share lock.
CREATE FUNCTION key_usage_snapshot_check_keys() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  orphan text;
BEGIN
  IF current_setting('sheetmeter.snapshot_users_joined', true) = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock_shared(usage_snapshot_user_lock_key());
  SELECT n."keyId" INTO orphan
  FROM inserted_snapshots n
  WHERE NOT EXISTS (SELECT FROM "ApiKey" k WHERE k."id" = n."keyId" AND k."userId" = n."userId")
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'KeyUsageSnapshot names key "%", which does not exist or is not its user''s', orphan
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'KeyUsageSnapshot_keyId_fkey';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER "KeyUsageSnapshot_key_exists"
  AFTER INSERT ON "KeyUsageSnapshot" REFERENCING NEW TABLE AS inserted_snapshots
  FOR EACH STATEMENT EXECUTE FUNCTION key_usage_snapshot_check_keys();

CREATE TRIGGER "KeyUsageSnapshot_keyId_fixed"
  BEFORE UPDATE OF "keyId" ON "KeyUsageSnapshot" FOR EACH ROW
  WHEN (OLD."keyId" IS DISTINCT FROM NEW."keyId") EXECUTE FUNCTION usage_snapshot_refuse_new_user('keyId', 'KeyUsageSnapshot_keyId_fixed');

CREATE TRIGGER "KeyUsageSnapshot_userId_fixed"
  BEFORE UPDATE OF "userId" ON "KeyUsageSnapshot" FOR EACH ROW
  WHEN (OLD."userId" IS DISTINCT FROM NEW."userId") EXECUTE FUNCTION usage_snapshot_refuse_new_user('userId', 'KeyUsageSnapshot_userId_fixed');

-- A key never changes id or owner (the insert check would not see its snapshots move).
CREATE TRIGGER "ApiKey_id_fixed"
  BEFORE UPDATE OF "id" ON "ApiKey" FOR EACH ROW
  WHEN (OLD."id" IS DISTINCT FROM NEW."id") EXECUTE FUNCTION usage_snapshot_refuse_new_user('id', 'ApiKey_id_fixed');

CREATE TRIGGER "ApiKey_userId_fixed"
  BEFORE UPDATE OF "userId" ON "ApiKey" FOR EACH ROW
  WHEN (OLD."userId" IS DISTINCT FROM NEW."userId") EXECUTE FUNCTION usage_snapshot_refuse_new_user('userId', 'ApiKey_userId_fixed');

-- Deleting keys (one by one, or all of a user's through the cascade) deletes their snapshots in the same
-- transaction, after the batches in flight committed. By key id: the primary key's leading column.
CREATE FUNCTION key_usage_snapshot_delete_for_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock(usage_snapshot_user_lock_key());
  DELETE FROM "KeyUsageSnapshot" s USING deleted_keys d WHERE s."keyId" = d."id";
  RETURN NULL;
END $$;

CREATE TRIGGER "ApiKey_delete_snapshots"
  AFTER DELETE ON "ApiKey" REFERENCING OLD TABLE AS deleted_keys
  FOR EACH STATEMENT EXECUTE FUNCTION key_usage_snapshot_delete_for_keys();

CREATE FUNCTION key_usage_snapshot_truncate_for_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(usage_snapshot_user_lock_key());
  TRUNCATE "KeyUsageSnapshot";
  RETURN NULL;
END $$;

CREATE TRIGGER "ApiKey_truncate_snapshots"
  AFTER TRUNCATE ON "ApiKey" FOR EACH STATEMENT EXECUTE FUNCTION key_usage_snapshot_truncate_for_keys();

-- The sync's writer, now for both tables in one call (one statement, one round trip per batch). The per-key rows
-- come as five more comma-separated columns (empty strings when the batch has none); only those whose key exists
-- and belongs to the named user are written, like the users' rows only of users that exist. Returns the users'
-- snapshots written (what the run's totals count).
CREATE FUNCTION upsert_usage_snapshots(
  user_ids text, periods text, hours text, counts text,
  key_ids text, key_user_ids text, key_periods text, key_hours text, key_counts text
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  written integer;
BEGIN
  PERFORM usage_snapshot_require_read_committed();
  PERFORM pg_advisory_xact_lock_shared(usage_snapshot_user_lock_key());
  PERFORM set_config('sheetmeter.snapshot_users_joined', 'on', true);
  INSERT INTO "UsageSnapshot" ("userId", "period", "hour", "used", "limit", "syncedAt")
  SELECT incoming."userId", incoming."period", incoming."hour", incoming."used", "User"."monthlyLimit",
    now() AT TIME ZONE 'UTC'
  FROM unnest(
      string_to_array(user_ids, ','),
      string_to_array(periods, ','),
      string_to_array(hours, ',')::timestamp[],
      string_to_array(counts, ',')::int[]
    ) AS incoming("userId", "period", "hour", "used")
  JOIN "User" ON "User"."id" = incoming."userId"
  ON CONFLICT ("userId", "hour") DO UPDATE
    SET "used" = GREATEST("UsageSnapshot"."used", EXCLUDED."used"),
      "limit" = COALESCE("UsageSnapshot"."limit", EXCLUDED."limit"),
      "syncedAt" = EXCLUDED."syncedAt";
  GET DIAGNOSTICS written = ROW_COUNT;
  IF key_ids <> '' THEN
    INSERT INTO "KeyUsageSnapshot" ("keyId", "userId", "period", "hour", "used", "syncedAt")
    SELECT incoming."keyId", incoming."userId", incoming."period", incoming."hour", incoming."used",
      now() AT TIME ZONE 'UTC'
    FROM unnest(
        string_to_array(key_ids, ','),
        string_to_array(key_user_ids, ','),
        string_to_array(key_periods, ','),
        string_to_array(key_hours, ',')::timestamp[],
        string_to_array(key_counts, ',')::int[]
      ) AS incoming("keyId", "userId", "period", "hour", "used")
    JOIN "ApiKey" ON "ApiKey"."id" = incoming."keyId" AND "ApiKey"."userId" = incoming."userId"
    ON CONFLICT ("keyId", "hour") DO UPDATE
      SET "used" = GREATEST("KeyUsageSnapshot"."used", EXCLUDED."used"), "syncedAt" = EXCLUDED."syncedAt";
  END IF;
  PERFORM set_config('sheetmeter.snapshot_users_joined', 'off', true);
  RETURN written;
END $$;

-- The four-column form stays for callers that write users' snapshots only; it is the same writer.
CREATE OR REPLACE FUNCTION upsert_usage_snapshots(user_ids text, periods text, hours text, counts text)
RETURNS integer LANGUAGE sql AS $$
  SELECT upsert_usage_snapshots(user_ids, periods, hours, counts, '', '', '', '', '')
$$;

-- Truncating users (tests, resets) empties both snapshot tables.
CREATE OR REPLACE FUNCTION usage_snapshot_truncate_for_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(usage_snapshot_user_lock_key());
  TRUNCATE "UsageSnapshot", "KeyUsageSnapshot";
  RETURN NULL;
END $$;
