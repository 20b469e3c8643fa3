import { createCookieSessionStorage, redirect } from "@remix-run/node";
import { getEnv } from "./env.server";

const USER_SESSION_KEY = "userId";

type SessionData = { userId: string };

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
      maxAge: 60 * 60 * 24 * 30,
    },
  });
  return storage;
}

function getSession(request: Request) {
  return sessionStorage().getSession(request.headers.get("Cookie"));
}

export async function getUserId(request: Request): Promise<string | undefined> {
  const session = await getSession(request);
  return session.get(USER_SESSION_KEY);
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
  if (await getUserId(request)) throw redirect("/dashboard");
}

/** The Set-Cookie value that ends the request's session. */
export async function endedSessionCookie(request: Request): Promise<string> {
  return sessionStorage().destroySession(await getSession(request));
}

export async function createUserSession(request: Request, userId: string, redirectTo: string): Promise<Response> {
  const session = await getSession(request);
  session.set(USER_SESSION_KEY, userId);
  return redirect(redirectTo, { headers: { "Set-Cookie": await sessionStorage().commitSession(session) } });
}

export async function logout(request: Request): Promise<Response> {
  return redirect("/login", { headers: { "Set-Cookie": await endedSessionCookie(request) } });
}
