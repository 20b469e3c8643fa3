import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, inject } from "vitest";
import { Redis as IORedis } from "ioredis";
import { closeDb } from "~/utils/db.server";
import { startRedisRest } from "../../dev/redis-rest";
import { databaseUrl, TEST_PG_ADMIN_URL, TEST_REDIS_URL } from "./test-env";

/**
 * Gives this test file its own Postgres database (a copy of the migrated template) and its own Redis keyspace
 * (logical database = worker id, flushed first) behind its own Upstash REST stand-in. The app's modules read
 * these through the environment like in production.
 */
const database = `sm_test_${Math.floor(Date.now() / 1000)}_${randomBytes(6).toString("hex")}`;
const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
await admin.connect();
await admin.query(`CREATE DATABASE "${database}" TEMPLATE "${inject("templateDatabase")}"`);
await admin.end();

// Each file claims one of Redis's logical databases 1–9 (0 is `npm run dev`'s, 10–13 the benches', 15 the browser
// tests'), so two test runs on one machine never flush or SCAN each other's keys. A claim is a key in database 0
// that expires on its own if the run dies.
const CLAIMABLE_REDIS_DBS = 9;
const claimToken = randomBytes(8).toString("hex");
const claims = new IORedis(TEST_REDIS_URL, { db: 0 });
const claimKey = (db: number) => `sheetmeter:test-redis-db:${db}`;
let redisDb = 0;
for (let attempt = 0; redisDb === 0; attempt++) {
  for (let db = 1; db <= CLAIMABLE_REDIS_DBS && redisDb === 0; db++) {
    if (await claims.set(claimKey(db), claimToken, "EX", 1800, "NX")) redisDb = db;
  }
  if (redisDb === 0) {
    if (attempt > 600) throw new Error("No free Redis test database after a minute; are stale test runs going on?");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
const flusher = new IORedis(TEST_REDIS_URL, { db: redisDb });
await flusher.flushdb();
flusher.disconnect();

const token = `test-token-${randomBytes(8).toString("hex")}`;
const rest = await startRedisRest({ redisUrl: TEST_REDIS_URL, token, db: redisDb });

process.env.NODE_ENV = "test";
process.env.DATABASE_URL = databaseUrl(database);
process.env.UPSTASH_REDIS_REST_URL = rest.url;
process.env.UPSTASH_REDIS_REST_TOKEN = token;
process.env.TEST_REDIS_DB = String(redisDb);
// The suite shares one machine with other runs, and a burst of 200 concurrent calls can outlast the production
// deadline there; the tests of the deadline itself (quota-faults, redis-http) build clients with their own.
process.env.REDIS_TIMEOUT_MS ??= "5000";

afterAll(async () => {
  await closeDb();
  await rest.close();
  if ((await claims.get(claimKey(redisDb))) === claimToken) await claims.del(claimKey(redisDb));
  claims.disconnect();
  const cleanup = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await cleanup.connect();
  await cleanup.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await cleanup.end();
});
