import { redirect } from "@remix-run/node";
import { getUserById, type PublicUser } from "~/models/user.server";
import { getDb } from "~/utils/db.server";
import { endedSessionCookie, getCurrentSession } from "~/utils/session.server";

/** The session's user, read from Postgres; null for a visitor, an ended or expired session, or a deleted user. */
export async function getOptionalUser(request: Request): Promise<PublicUser | null> {
  return (await getOptionalUserSession(request))?.user ?? null;
}

async function getOptionalUserSession(request: Request): Promise<{ user: PublicUser; sessionId: string } | null> {
  const session = await getCurrentSession(request);
  const user = session ? await getUserById(getDb(), session.userId) : null;
  return session && user ? { user, sessionId: session.id } : null;
}

/** The signed-in user, or a redirect to /login that brings them back here afterwards. */
export async function requireUser(request: Request): Promise<PublicUser> {
  return (await requireUserSession(request)).user;
}

/** The signed-in user and the id of the session they came with (the settings page marks and keeps that one). */
export async function requireUserSession(request: Request): Promise<{ user: PublicUser; sessionId: string }> {
  const signedIn = await getOptionalUserSession(request);
  if (signedIn) return signedIn;
  const url = new URL(request.url);
  const params = new URLSearchParams({ redirectTo: `${url.pathname}${url.search}` });
  // An ended session's cookie is useless to the browser; clearing it keeps /login from seeing a stale one.
  throw redirect(`/login?${params}`, { headers: { "Set-Cookie": await endedSessionCookie(request) } });
}
