import { data, redirect } from "@remix-run/node";
import { z } from "zod";
import { deleteAccount } from "~/models/account-deletion.server";
import {
  admitPasswordReentry,
  clearPasswordReentries,
  type PasswordReentryAdmission,
} from "~/models/password-reentry.server";
import {
  changeEmail,
  changePassword,
  getUserById,
  normalizeEmail,
  type PublicUser,
  verifyUserPassword,
} from "~/models/user.server";
import { deleteOtherSessions } from "~/models/sessions.server";
import { getBulkDb, getDb } from "~/utils/db.server";
import { noticeCookie } from "~/utils/notice.server";
import { getQstash } from "~/utils/qstash.server";
import { getRedis } from "~/utils/redis.server";
import { endedSessionCookie } from "~/utils/session.server";
import { emailSchema, fieldErrors, newPasswordSchema } from "~/utils/validation";

/**
 * The /settings actions that change the account itself. Each asks for the password again, counted by the
 * password re-entry throttle before argon2 runs (password-reentry.server.ts), as log-in counts its attempts.
 */
export const ACCOUNT_INTENTS = ["change-email", "change-password", "delete-account"] as const;
export type AccountIntent = (typeof ACCOUNT_INTENTS)[number];

export function isAccountIntent(intent: unknown): intent is AccountIntent {
  return ACCOUNT_INTENTS.includes(intent as AccountIntent);
}

export type AccountActionData =
  | { intent: AccountIntent; errors: Record<string, string> }
  | { intent: "change-email"; changed: true; email: string }
  | { intent: "change-password"; changed: true; ended: number };

const password = (message: string) => z.string({ error: message }).min(1, message).max(200, "That is too long.");

const schemas = {
  "change-email": z.object({ email: emailSchema, password: password("Enter your password.") }),
  "change-password": z.object({
    currentPassword: password("Enter your current password."),
    newPassword: newPasswordSchema,
  }),
  "delete-account": z.object({
    confirmEmail: z.string({ error: "Type your email address." }).trim().min(1, "Type your email address."),
    password: password("Enter your password."),
  }),
};

const WRONG_PASSWORD = "That is not your password.";

const failure = (intent: AccountIntent, errors: Record<string, string>, status = 400, headers?: HeadersInit) =>
  data<AccountActionData>({ intent, errors }, { status, headers });

function refused(intent: AccountIntent, admission: Extract<PasswordReentryAdmission, { admitted: false }>) {
  const minutes = Math.ceil(admission.retryAfterSeconds / 60);
  const form = `Too many wrong passwords. Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`;
  return failure(intent, { form }, 429, { "Retry-After": String(admission.retryAfterSeconds) });
}

export async function handleAccountAction(
  request: Request,
  intent: AccountIntent,
  form: FormData,
  { user, sessionId }: { user: PublicUser; sessionId: string },
) {
  const parsed = schemas[intent].safeParse(Object.fromEntries(form));
  if (!parsed.success) return failure(intent, fieldErrors(parsed.error));
  const input = parsed.data as Record<string, string>;
  // Checked before the password, so a typo in the confirmation costs no guess.
  if (intent === "delete-account" && normalizeEmail(input.confirmEmail) !== user.email) {
    return failure(intent, { confirmEmail: `Type ${user.email} exactly, to confirm.` });
  }

  const redis = getRedis();
  // Without the throttle the password could be guessed without limit from a stolen session, so a change that
  // cannot be throttled is refused, like a log-in.
  const admission = await admitPasswordReentry(redis, user.id, sessionId).catch((error: unknown) => {
    console.error("settings: the password re-entry throttle (Redis) could not be read:", error);
    return undefined;
  });
  if (!admission) {
    return failure(intent, { form: "We can't check your password right now; try again in a minute." }, 503, {
      "Retry-After": "60",
    });
  }
  if (!admission.admitted) return refused(intent, admission);
  const forgiveMistakes = () =>
    clearPasswordReentries(redis, user.id, sessionId).catch((error: unknown) => {
      console.error("settings: password re-entries could not be cleared (Redis):", error);
    });

  const db = getDb();
  if (intent === "change-email") {
    const result = await changeEmail(db, user.id, { password: input.password, newEmail: input.email });
    if (!result.ok && result.reason === "wrong_password") return failure(intent, { password: WRONG_PASSWORD });
    await forgiveMistakes();
    if (!result.ok && result.reason === "email_taken") {
      return failure(intent, { email: "Another account already uses that email address." });
    }
    if (!result.ok) return failure(intent, { email: "That is already your email address." });
    return data<AccountActionData>({ intent, changed: true, email: result.email });
  }

  if (intent === "change-password") {
    if (
      !(await changePassword(db, user.id, { currentPassword: input.currentPassword, newPassword: input.newPassword }))
    ) {
      return failure(intent, { currentPassword: "That is not your current password." });
    }
    await forgiveMistakes();
    // Whoever knew the old password may hold a session made with it; a new password is only worth having if
    // those sessions end with it. This browser, which just proved it knows the password, stays signed in.
    return data<AccountActionData>({ intent, changed: true, ended: await deleteOtherSessions(db, user.id, sessionId) });
  }

  if (!(await verifyUserPassword(db, user.id, input.password))) return failure(intent, { password: WRONG_PASSWORD });
  // The bulk pool: a large account's rows can take longer to delete than a page's statement deadline allows.
  try {
    await deleteAccount({ db: getBulkDb(), redis, qstash: getQstash() }, user.id);
  } catch (error) {
    console.error("settings: account deletion failed:", error);
    // Redis or Postgres failed on the way. While the account is still in Postgres (perhaps with some sheets gone
    // already) the customer tries again, and the deletion picks up where it stopped. Once it is gone from Postgres,
    // only Redis keys can be left, which expire on their own (or `user:delete` finishes them): they are signed out.
    const stillThere = await getUserById(db, user.id).catch(() => true);
    if (stillThere) {
      return failure(
        intent,
        { form: "We could not delete your account just now: a service is not answering. Try again in a minute." },
        503,
        { "Retry-After": "60" },
      );
    }
  }
  // The session row went with the account; the browser forgets its cookie and learns what happened on the home page.
  const headers = new Headers();
  headers.append("Set-Cookie", await endedSessionCookie(request));
  headers.append("Set-Cookie", await noticeCookie.serialize("account-deleted"));
  return redirect("/", { headers });
}
