/**
 * Tells "Postgres did not answer" (unreachable, hung past its deadline, restarting, out of connections) apart from
 * every other database error. The first is the store's state, worth a designed 503 and a retry; the second is a
 * bug or bad data, and must stay a loud error rather than be disguised as an outage.
 *
 * Prisma does not wrap everything: `pg`'s own timeouts (the pool's acquire timeout, the client's `query_timeout`,
 * the connect timeout) reach the caller as plain Errors, so their messages are matched as `pg` writes them.
 */
const PRISMA_OUTAGE_CODES = new Set([
  "P1001", // can't reach the database server
  "P1002", // the server was reached but timed out
  "P1008", // operations timed out
  "P1017", // the server closed the connection
  "P2024", // timed out fetching a connection from the pool
  "P2037", // too many database connections
]);

// SQLSTATE: class 08 connection exceptions, too many connections, a statement cancelled by statement_timeout,
// and a server shutting down or starting up.
const OUTAGE_SQLSTATE = /^(08...|53300|57014|57P0[123])$/;

const PG_CLIENT_OUTAGE_MESSAGE =
  /^(Query read timeout|Connection terminated|timeout exceeded when trying to connect|timeout expired|Client has encountered a connection error)/;

interface ErrorFields {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  meta?: { driverAdapterError?: { cause?: { originalCode?: unknown; code?: unknown } } };
  cause?: unknown;
}

export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && typeof current === "object" && depth < 5; depth++) {
    const fields = current as ErrorFields;
    if (fields.name === "PrismaClientInitializationError") return true;
    if (
      typeof fields.code === "string" &&
      (PRISMA_OUTAGE_CODES.has(fields.code) || OUTAGE_SQLSTATE.test(fields.code))
    ) {
      return true;
    }
    const adapterCause = fields.meta?.driverAdapterError?.cause;
    const sqlState = adapterCause?.originalCode ?? adapterCause?.code;
    if (typeof sqlState === "string" && OUTAGE_SQLSTATE.test(sqlState)) return true;
    if (typeof fields.message === "string" && PG_CLIENT_OUTAGE_MESSAGE.test(fields.message)) return true;
    current = fields.cause;
  }
  return false;
}

export const DATABASE_RETRY_AFTER_SECONDS = 30;

export const DATABASE_UNAVAILABLE_MESSAGE =
  "Our database is not answering right now, so this page cannot load. Nothing is lost: your sheets, keys and usage are kept. Please try again in a minute.";

/** The page every route shows for an outage: the shared error boundary renders it as a designed 503. */
export function databaseUnavailablePage(message = DATABASE_UNAVAILABLE_MESSAGE): Response {
  return new Response(message, {
    status: 503,
    headers: { "Retry-After": String(DATABASE_RETRY_AFTER_SECONDS) },
  });
}

/** Runs a loader's or action's work, turning a database outage into the designed 503 page; other errors pass. */
export async function withDatabaseOutagePage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    console.error("Database unavailable, answering 503:", (error as Error).message?.split("\n").at(-1));
    throw databaseUnavailablePage();
  }
}
