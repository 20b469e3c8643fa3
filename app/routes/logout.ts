import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { databaseUnavailablePage, isDatabaseUnavailable } from "~/utils/database-outage.server";
import { assertSameOrigin } from "~/utils/request-guard.server";
import { logout } from "~/utils/session.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

export const action = withSecurityHeaders(async ({ request }: ActionFunctionArgs) => {
  assertSameOrigin(request);
  try {
    return await logout(request);
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    // The row could not be deleted, so the session still works; saying "logged out" would be a false promise.
    console.error("logout: database unavailable:", (error as Error).message?.split("\n").at(-1));
    throw databaseUnavailablePage(
      "We could not log you out because our database is not answering, so this session is still open. Please try again in a minute.",
    );
  }
});

// Logging out changes state, so it is a POST; a GET (a prefetch, a pasted link) only goes home.
export const loader = withSecurityHeaders(() => redirect("/"));
