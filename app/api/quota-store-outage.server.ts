import { QuotaStoreUnavailableError } from "~/models/quota-store.server";
import { problem } from "./problem.server";

const RETRY_AFTER_SECONDS = 5;

/**
 * Answers 503 with Retry-After when the quota store (Redis) fails: serving for free during an outage is the more
 * expensive mistake, so the call is neither served nor counted. Any other failure propagates.
 */
export async function withOutageAnswer(handle: () => Promise<Response>): Promise<Response> {
  try {
    return await handle();
  } catch (error) {
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
