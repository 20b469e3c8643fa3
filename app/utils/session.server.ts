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

/** Only paths on this site, so `?redirectTo=` cannot send a user somewhere else after log-in. */
export function safeRedirect(to: FormDataEntryValue | string | null | undefined, fallback = "/dashboard"): string {
  if (typeof to !== "string" || !to.startsWith("/") || to.startsWith("//") || to.startsWith("/\\")) return fallback;
  return to;
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
