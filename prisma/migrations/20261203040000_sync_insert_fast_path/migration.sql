-- The hourly sync's writer, cheaper per row (docs/decisions/0010-sync-writer-plain-insert-and-covering-lookups.md).
--
-- Measured per 200 000 rows in batches of 2 000 (Postgres backend CPU, not wall time, so other load on the machine
-- does not count): the writer of 20261202020000_key_usage 3.0–3.5 s; the same with the covering index below
-- 2.1–2.2 s; with the index and the plain INSERT first 1.76 s. The integrity rule of decision 0008 is untouched:
-- the same advisory lock, taken before the statement that reads "User", and the same JOINs.

-- The writer's JOIN reads each user's "monthlyLimit" (the limit in force, written with the snapshot). Through the
-- primary key that is an index probe and a heap fetch per row, on a random page of "User" for each; this index
-- answers both from the index alone (an index-only scan: "User" is rarely written, so its pages stay all-visible).
CREATE INDEX "User_id_monthlyLimit_idx" ON "User"("id") INCLUDE ("monthlyLimit");

-- The same for the per-key rows, which are written only for a key that exists and belongs to the named user.
CREATE INDEX "ApiKey_id_userId_idx" ON "ApiKey"("id") INCLUDE ("userId");

-- A plain INSERT first, the upsert only when it meets an existing row. `INSERT … ON CONFLICT` is a speculative
-- insertion: per row a conflict check, the insertion, and a WAL record confirming it, about a third more per row
-- than a plain INSERT (0.91 against 1.36 s for 200 000 rows). Nearly every batch of a run is the first write of its
-- hour; only a retried page, a second run in the same hour or a finished month's last hour rewritten meets rows
-- already there. Then the plain INSERT fails on the primary key and is rolled back (its block is a subtransaction)
-- and the upsert writes the batch: the same rows and values as before, so the result never depends on which path
-- ran. A concurrent writer of the same (user, hour) makes the plain INSERT wait for it and then fail the same way.
CREATE OR REPLACE FUNCTION upsert_usage_snapshots(
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
  BEGIN
    INSERT INTO "UsageSnapshot" ("userId", "period", "hour", "used", "limit", "syncedAt")
    SELECT incoming."userId", incoming."period", incoming."hour", incoming."used", "User"."monthlyLimit",
      now() AT TIME ZONE 'UTC'
    FROM unnest(
        string_to_array(user_ids, ','),
        string_to_array(periods, ','),
        string_to_array(hours, ',')::timestamp[],
        string_to_array(counts, ',')::int[]
      ) AS incoming("userId", "period", "hour", "used")
    JOIN "User" ON "User"."id" = incoming."userId";
    GET DIAGNOSTICS written = ROW_COUNT;
  EXCEPTION WHEN unique_violation THEN
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
  END;
  IF key_ids <> '' THEN
    BEGIN
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
      JOIN "ApiKey" ON "ApiKey"."id" = incoming."keyId" AND "ApiKey"."userId" = incoming."userId";
    EXCEPTION WHEN unique_violation THEN
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
    END;
  END IF;
  PERFORM set_config('sheetmeter.snapshot_users_joined', 'off', true);
  RETURN written;
END $$;
