import { redirect } from "@remix-run/node";
import { getUserById, type PublicUser } from "~/models/user.server";
import { getDb } from "~/utils/db.server";
import { endedSessionCookie, getUserId } from "~/utils/session.server";

/** The session's user, read from Postgres; null for a visitor, or for a cookie whose user no longer exists. */
export async function getOptionalUser(request: Request): Promise<PublicUser | null> {
  const userId = await getUserId(request);
  return userId ? getUserById(getDb(), userId) : null;
}

/** The signed-in user, or a redirect to /login that brings them back here afterwards. */
export async function requireUser(request: Request): Promise<PublicUser> {
  const user = await getOptionalUser(request);
  if (user) return user;
  const url = new URL(request.url);
  const params = new URLSearchParams({ redirectTo: `${url.pathname}${url.search}` });
  // A cookie for a deleted user would otherwise loop; logging out clears it.
  throw redirect(`/login?${params}`, { headers: { "Set-Cookie": await endedSessionCookie(request) } });
}
