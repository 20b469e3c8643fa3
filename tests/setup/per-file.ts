import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, inject } from "vitest";
import { Redis as IORedis } from "ioredis";
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

// Redis database 0 is left to `npm run dev`; the end-to-end server uses 15.
const redisDb = (Number(process.env.VITEST_POOL_ID ?? 1) % 14) + 1;
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

afterAll(async () => {
  const client = (globalThis as { __sheetmeterDb?: { $disconnect(): Promise<void> } }).__sheetmeterDb;
  await client?.$disconnect();
  await rest.close();
  const cleanup = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await cleanup.connect();
  await cleanup.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  await cleanup.end();
});
