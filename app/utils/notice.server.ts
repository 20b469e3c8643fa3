import { createCookie } from "@remix-run/node";
import { getEnv } from "./env.server";

/**
 * A one-time notice for the next page (a "flash"), for when the page that did something cannot show it: deleting
 * an account ends the session and lands on the home page. The cookie holds only a notice's name, signed, so a
 * crafted link or cookie cannot make the page say something we did not; it lives a minute and is cleared on read.
 */
export const NOTICES = {
  "account-deleted": "Your account and everything in it have been deleted. Thank you for trying Sheetmeter.",
} as const;

export type NoticeName = keyof typeof NOTICES;

let cookie: ReturnType<typeof createCookie> | undefined;

function notice() {
  const env = getEnv();
  cookie ??= createCookie("__sheetmeter_notice", {
    httpOnly: true,
    sameSite: "lax",
    path: "/",
    maxAge: 60,
    secrets: [env.SESSION_SECRET],
    secure: env.NODE_ENV === "production",
  });
  return cookie;
}

export const noticeCookie = {
  serialize: (name: NoticeName) => notice().serialize(name),
};

/** The notice the request carries, if any, and the Set-Cookie that clears it (null when there was none). */
export async function takeNotice(request: Request): Promise<{ message: string | null; clear: string | null }> {
  const header = request.headers.get("Cookie");
  if (!header?.includes("__sheetmeter_notice=")) return { message: null, clear: null };
  const name: unknown = await notice().parse(header);
  const clear = await notice().serialize("", { maxAge: 0 });
  const message = typeof name === "string" && name in NOTICES ? NOTICES[name as NoticeName] : null;
  return { message, clear };
}
