import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "~/generated/prisma/client";
import { DEFAULT_DATABASE_TIMEOUT_MS, getEnv } from "./env.server";
import { releaseSingleton, replaceSingleton, singleton } from "./singleton.server";

export type Db = PrismaClient;

const DB = "db";
const BULK_DB = "db:bulk";

export interface DbTimeouts {
  /** Opening a connection, and waiting for a free one in the pool. */
  connectTimeoutMs: number;
  /** One statement, from sending it to its last row. */
  statementTimeoutMs: number;
}

// For clients made outside the app's configuration (scripts' scratch databases, benches, test fixtures).
const DEFAULT_TIMEOUTS: DbTimeouts = {
  connectTimeoutMs: DEFAULT_DATABASE_TIMEOUT_MS,
  statementTimeoutMs: DEFAULT_DATABASE_TIMEOUT_MS,
};

export function createPrismaClient(databaseUrl: string, timeouts: DbTimeouts = DEFAULT_TIMEOUTS): PrismaClient {
  return new PrismaClient({
    adapter: new PrismaPg({
      connectionString: databaseUrl,
      connectionTimeoutMillis: timeouts.connectTimeoutMs,
      // The server cancels a statement past its deadline, so an abandoned query stops costing Postgres anything;
      // but a hung server (or a network that swallows packets) cancels nothing, so the client gives up on its own
      // clock too. pg's pool then drops that connection rather than reuse one with a reply still owed on it.
      statement_timeout: timeouts.statementTimeoutMs,
      query_timeout: timeouts.statementTimeoutMs,
    }),
  });
}

/** The client for request paths: every query ends within the request deadline, answered or not. */
export function getDb(): PrismaClient {
  return singleton(DB, () => createConfiguredClient("DATABASE_STATEMENT_TIMEOUT_MS"));
}

/**
 * The client for the usage sync and the CSV import, whose batched statements legitimately take longer than a
 * request may wait. A pool of its own, so a long import never holds a connection that page loads wait for.
 */
export function getBulkDb(): PrismaClient {
  return singleton(BULK_DB, () => createConfiguredClient("DATABASE_BULK_STATEMENT_TIMEOUT_MS"));
}

function createConfiguredClient(
  statementTimeout: "DATABASE_STATEMENT_TIMEOUT_MS" | "DATABASE_BULK_STATEMENT_TIMEOUT_MS",
): PrismaClient {
  const env = getEnv();
  return createPrismaClient(env.DATABASE_URL, {
    connectTimeoutMs: env.DATABASE_CONNECT_TIMEOUT_MS,
    statementTimeoutMs: env[statementTimeout],
  });
}

/** Ends the pools' connections, so a script or test file can exit; a later `getDb()` opens a new pool. */
export async function closeDb(): Promise<void> {
  await Promise.all([
    releaseSingleton<PrismaClient>(DB)?.$disconnect(),
    releaseSingleton<PrismaClient>(BULK_DB)?.$disconnect(),
  ]);
}

/** Makes `getDb()` answer `db` (say, one pointing at a dead port) until called with undefined. */
export function setDbForTests(db: PrismaClient | undefined): void {
  replaceSingleton(DB, db);
}

/** The same for `getBulkDb()`. */
export function setBulkDbForTests(db: PrismaClient | undefined): void {
  replaceSingleton(BULK_DB, db);
}
