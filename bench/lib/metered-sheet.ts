import { randomBytes } from "node:crypto";
import { Redis as IORedis } from "ioredis";
import { startRedisRestProcess } from "../../dev/redis-rest-process";
import { createScratchDatabase } from "../../scripts/lib/scratch-db";
import { createApiKey } from "~/models/api-keys.server";
import { importSheet } from "~/models/csv-import.server";
import { createPrismaClient } from "~/utils/db.server";
import { ALLOW_INSECURE_LOCAL } from "~/utils/env.server";
import { periodOf, quotaKey } from "~/utils/period";

export const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * What the benches of the consumer API share: a scratch database holding one customer with a key and a sheet, and a
 * Redis logical database of the bench's own (flushed before and after) behind the Upstash REST stand-in, which runs
 * in a process of its own so it does not share an event loop with the code being measured.
 */
export interface MeteredSheet {
  /** The env an app server needs to serve this sheet (point UPSTASH_REDIS_REST_URL elsewhere to put a proxy in). */
  appEnv: Record<string, string>;
  rest: { url: string; pid: number };
  key: string;
  sheetId: string;
  /** The sheet as the API sees it, for a server that answers its pages without looking it up. */
  sheet: { id: string; columns: string[]; rowCount: number; version: number };
  databaseUrl: string;
  /** The customer's live quota counter this month, read straight from Redis (no REST, no proxy). */
  counted(): Promise<number>;
  /** Stops the stand-in, flushes the bench's Redis database and drops the scratch database. */
  close(): Promise<void>;
}

/**
 * What a bench run with NODE_ENV=production must still set, since production never reads .env.example: QStash
 * values of its own (the benches never publish; nothing listens on port 9) and a fresh session secret, plus the
 * escape hatch that lets the built app use plain http on loopback (see env.server.ts). Callers add the database,
 * Redis and APP_URL, all loopback.
 */
export function loopbackProductionSecrets(): Record<string, string> {
  const secret = () => randomBytes(24).toString("base64url");
  return {
    QSTASH_URL: "http://127.0.0.1:9",
    QSTASH_TOKEN: `bench_${secret()}`,
    QSTASH_CURRENT_SIGNING_KEY: `sig_bench_${secret()}`,
    QSTASH_NEXT_SIGNING_KEY: `sig_bench_${secret()}`,
    SESSION_SECRET: secret(),
    [ALLOW_INSECURE_LOCAL]: "1",
  };
}

export async function createMeteredSheet(options: {
  /** Prefix of the scratch database's name. */
  dbPrefix: string;
  redisDb: number;
  email: string;
  monthlyLimit: number;
  rows: number;
  log: (line: string) => void;
}): Promise<MeteredSheet> {
  const scratch = await createScratchDatabase(PG_ADMIN_URL, options.dbPrefix);
  const direct = new IORedis(REDIS_URL, { db: options.redisDb });
  const db = createPrismaClient(scratch.url);
  let rest: Awaited<ReturnType<typeof startRedisRestProcess>> | undefined;
  const close = async () => {
    if (rest) await rest.stop();
    await db.$disconnect();
    await direct.flushdb().catch(() => undefined);
    direct.disconnect();
    await scratch.drop();
  };
  try {
    await direct.flushdb();
    const token = `bench-${randomBytes(8).toString("hex")}`;
    rest = await startRedisRestProcess({ redisUrl: REDIS_URL, token, db: options.redisDb });

    const user = await db.user.create({
      data: { email: options.email, passwordHash: "unused", monthlyLimit: options.monthlyLimit },
      select: { id: true },
    });
    const { key } = await createApiKey(db, user.id, "bench");
    const columns = ["id", "name", "city", "score", "active"];
    const csv = [columns.join(",")];
    const cities = ["Paris", "Berlin", "Oslo", "Rome", "Lisbon"];
    for (let i = 0; i < options.rows; i++)
      csv.push(`${i},Person ${i},${cities[i % cities.length]},${(i * 37) % 1000},${i % 2 === 0}`);
    const { sheetId } = await importSheet(db, { userId: user.id, name: "bench", bytes: Buffer.from(csv.join("\n")) });
    options.log(
      `Seeded a sheet of ${options.rows} rows in ${scratch.name}; Redis db ${options.redisDb} behind ${rest.url}.`,
    );

    const counter = quotaKey(user.id, periodOf(new Date()));
    return {
      appEnv: {
        DATABASE_URL: scratch.url,
        UPSTASH_REDIS_REST_URL: rest.url,
        UPSTASH_REDIS_REST_TOKEN: token,
        ...loopbackProductionSecrets(),
      },
      rest,
      key,
      sheetId,
      sheet: { id: sheetId, columns, rowCount: options.rows, version: 1 },
      databaseUrl: scratch.url,
      counted: async () => Number((await direct.get(counter)) ?? 0),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
