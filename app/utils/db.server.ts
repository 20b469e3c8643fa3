import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "~/generated/prisma/client";
import { getEnv } from "./env.server";
import { releaseSingleton, replaceSingleton, singleton } from "./singleton.server";

export type Db = PrismaClient;

const DB = "db";

export function createPrismaClient(databaseUrl: string): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}

export function getDb(): PrismaClient {
  return singleton(DB, () => createPrismaClient(getEnv().DATABASE_URL));
}

/** Ends the pool's connections, so a script or test file can exit; a later `getDb()` opens a new pool. */
export async function closeDb(): Promise<void> {
  await releaseSingleton<PrismaClient>(DB)?.$disconnect();
}

/** Makes `getDb()` answer `db` (say, one pointing at a dead port) until called with undefined. */
export function setDbForTests(db: PrismaClient | undefined): void {
  replaceSingleton(DB, db);
}
