import { QuotaStoreUnavailableError } from "~/models/quota-store.server";
import { isDatabaseUnavailable } from "~/utils/database-outage.server";
import { problem } from "./problem.server";

const RETRY_AFTER_SECONDS = 5;

/**
 * Answers 503 with Retry-After when a store fails, naming the one that did: serving for free during an outage is
 * the more expensive mistake, so the call is neither served nor counted. Any other failure propagates.
 */
export async function withOutageAnswer(handle: () => Promise<Response>): Promise<Response> {
  try {
    return await handle();
  } catch (error) {
    // Checked first: a Postgres read inside a Redis step (a key missing from the key cache, a lost counter being
    // restored from its snapshot) arrives wrapped as the quota store's failure, but it is the database that failed.
    if (isDatabaseUnavailable(error)) return databaseUnavailable(error);
    if (!(error instanceof QuotaStoreUnavailableError)) throw error;
    console.error(`Quota store unreachable, refusing API call: ${(error.cause as Error).message}`);
    return problem(
      {
        status: 503,
        type: "quota-store-unavailable",
        title: "Quota check unavailable",
        detail: "Usage cannot be checked right now, so the call was not served and not counted. Try again shortly.",
      },
      { "Retry-After": String(RETRY_AFTER_SECONDS) },
    );
  }
}

function databaseUnavailable(error: unknown): Response {
  console.error(
    `Database unavailable, refusing API call: ${String((error as Error).message)
      .split("\n")
      .at(-1)}`,
  );
  return problem(
    {
      status: 503,
      type: "database-unavailable",
      title: "Database unavailable",
      detail: "Our database is not answering right now, so the call was not served and not counted. Try again shortly.",
    },
    { "Retry-After": String(RETRY_AFTER_SECONDS) },
  );
}
