import { createCookieSessionStorage, redirect } from "@remix-run/node";
import {
  type ActiveSession,
  createSession,
  deleteSession,
  findActiveSession,
  SESSION_LIFETIME_SECONDS,
} from "~/models/sessions.server";
import { type Db, getDb } from "./db.server";
import { getEnv } from "./env.server";

// The cookie names a row in the Session table and nothing else: who the user is, and whether the session still
// holds, is decided by Postgres on every request, so deleting the row (log-out, password change) ends it at once.
const SESSION_ID_KEY = "sessionId";

type SessionData = { sessionId: string };

let storage: ReturnType<typeof createCookieSessionStorage<SessionData>> | undefined;

function sessionStorage() {
  const env = getEnv();
  storage ??= createCookieSessionStorage<SessionData>({
    cookie: {
      name: "__sheetmeter_session",
      httpOnly: true,
      sameSite: "lax",
      path: "/",
      secrets: [env.SESSION_SECRET],
      secure: env.NODE_ENV === "production",
      maxAge: SESSION_LIFETIME_SECONDS,
    },
  });
  return storage;
}

function getCookieSession(request: Request) {
  return sessionStorage().getSession(request.headers.get("Cookie"));
}

async function cookieSessionId(request: Request): Promise<string | undefined> {
  const id = (await getCookieSession(request)).get(SESSION_ID_KEY);
  return typeof id === "string" && id ? id : undefined;
}

// A page load asks "who is this?" several times (root loader, route loader, requireUser); one lookup per request
// keeps that to one query and one "last seen" decision. Keyed by the Request object, so it dies with the request.
const sessionByRequest = new WeakMap<Request, Promise<ActiveSession | null>>();

/** The request's live session, or null for a visitor, a forged cookie, or a session that was ended or expired. */
export function getCurrentSession(request: Request): Promise<ActiveSession | null> {
  let lookup = sessionByRequest.get(request);
  if (!lookup) {
    lookup = cookieSessionId(request).then((id) => (id ? findActiveSession(getDb(), id) : null));
    sessionByRequest.set(request, lookup);
  }
  return lookup;
}

/** Whether the request comes with a session cookie at all, valid or not; answered without any store. */
export function carriesSessionCookie(request: Request): boolean {
  return /(?:^|;\s*)__sheetmeter_session=/.test(request.headers.get("Cookie") ?? "");
}

export async function getUserId(request: Request): Promise<string | undefined> {
  return (await getCurrentSession(request))?.userId;
}

// Browsers drop TAB, CR and LF inside a URL and read a backslash as "/", so "/<TAB>/evil.example" reaches them as
// "//evil.example", another host; CR and LF would also make the Location header itself invalid (a 500 after the
// password was accepted). No path of this app needs any of them.
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const UNSAFE_IN_REDIRECT = /[\u0000-\u001f\u007f-\u009f\\]/;

/**
 * Only paths on this site, so `?redirectTo=` cannot send a user somewhere else after log-in: the target is resolved
 * against APP_URL the way a browser would resolve it, and kept only when it lands on the same origin. The answer is
 * the resolved path (percent-encoded), never the raw input, so whatever reaches the Location header is valid in it.
 */
export function safeRedirect(to: FormDataEntryValue | string | null | undefined, fallback = "/dashboard"): string {
  if (typeof to !== "string" || !to.startsWith("/") || to.startsWith("//") || UNSAFE_IN_REDIRECT.test(to)) {
    return fallback;
  }
  const base = new URL(getEnv().APP_URL);
  let resolved: URL;
  try {
    resolved = new URL(to, base);
  } catch {
    return fallback;
  }
  if (resolved.origin !== base.origin) return fallback;
  return `${resolved.pathname}${resolved.search}${resolved.hash}`;
}

/** For pages meant for visitors (home, log-in, sign-up): a signed-in user goes straight to the dashboard. */
export async function redirectSignedIn(request: Request): Promise<void> {
  // With Postgres down nobody can be recognised; the visitor page still renders, and its action reports the outage.
  const userId = await getUserId(request).catch(() => undefined);
  if (userId) throw redirect("/dashboard");
}

/** The Set-Cookie value that makes the browser forget its session cookie. */
export async function endedSessionCookie(request: Request): Promise<string> {
  return sessionStorage().destroySession(await getCookieSession(request));
}

/**
 * Signs `userId` in with a new session row. The session the browser arrived with (if any) is deleted rather than
 * reused, so an id planted in the browser before log-in (session fixation) is worth nothing after it.
 */
export async function createUserSession(
  request: Request,
  userId: string,
  redirectTo: string,
  { db = getDb() }: { db?: Db } = {},
): Promise<Response> {
  const previousId = await cookieSessionId(request);
  if (previousId) await deleteSession(db, previousId);
  const session = await createSession(db, { userId, userAgent: request.headers.get("User-Agent") });
  const cookie = await sessionStorage().getSession();
  cookie.set(SESSION_ID_KEY, session.id);
  return redirect(redirectTo, { headers: { "Set-Cookie": await sessionStorage().commitSession(cookie) } });
}

/** Deletes the request's session row, so its cookie is refused even if someone kept a copy. */
export async function logout(request: Request): Promise<Response> {
  const id = await cookieSessionId(request);
  if (id) await deleteSession(getDb(), id);
  return redirect("/login", { headers: { "Set-Cookie": await endedSessionCookie(request) } });
}
