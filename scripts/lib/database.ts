import pg from "pg";
import { loadRawEnv } from "~/utils/env.server";

/**
 * Commands run from a terminal (admin, seed, migrate) check for their database before doing anything, so a
 * newcomer who has not started `npm run dev` reads one sentence saying what to do instead of a driver's stack trace.
 */
export class DatabaseUnavailableError extends Error {}

const CONNECT_TIMEOUT_MS = 5000;

function describeLocation(url: string): string {
  try {
    const { hostname, port, pathname } = new URL(url);
    return `${hostname}:${port || 5432}${pathname}`;
  } catch {
    return "DATABASE_URL";
  }
}

function describeFailure(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ENOTFOUND") return "unknown host";
  return (message || String(error)).split("\n")[0];
}

/** The database URL, once a connection to it has succeeded; throws DatabaseUnavailableError otherwise. */
export async function requireReachableDatabase(
  source: Record<string, string | undefined> = process.env,
): Promise<string> {
  const url = loadRawEnv(source).DATABASE_URL;
  if (!url) {
    throw new DatabaseUnavailableError(
      "No database to use: DATABASE_URL is not set and no `npm run dev` is running; start `npm run dev` in " +
        "another terminal or set DATABASE_URL.",
    );
  }
  // Which advice fits depends on who chose this address: the developer, or a running `npm run dev`.
  const fromDevStack = !loadRawEnv(source, { devStackRecord: false }).DATABASE_URL;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on("error", () => {}); // a failed connect is reported through connect()'s rejection
  try {
    await client.connect();
  } catch (error) {
    const failure = `${describeLocation(url)} (${describeFailure(error)})`;
    throw new DatabaseUnavailableError(
      fromDevStack
        ? `Cannot reach the database \`npm run dev\` recorded at ${failure}; restart \`npm run dev\` or set DATABASE_URL.`
        : `Cannot reach the database at ${failure}; check that this Postgres is running or correct DATABASE_URL.`,
    );
  } finally {
    await client.end().catch(() => {});
  }
  return url;
}
