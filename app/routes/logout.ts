import type { ActionFunctionArgs } from "@remix-run/node";
import { redirect } from "@remix-run/node";
import { assertSameOrigin } from "~/utils/request-guard.server";
import { logout } from "~/utils/session.server";
import { withSecurityHeaders } from "~/utils/resource-route.server";

export const action = withSecurityHeaders(async ({ request }: ActionFunctionArgs) => {
  assertSameOrigin(request);
  return logout(request);
});

// Logging out changes state, so it is a POST; a GET (a prefetch, a pasted link) only goes home.
export const loader = withSecurityHeaders(() => redirect("/"));
