import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useNavigation, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import { Field, FormError, primaryButton } from "~/components/forms";
import { admitLoginAttempt, recordSuccessfulLogin } from "~/models/login-throttle.server";
import { normalizeEmail, verifyLogin } from "~/models/user.server";
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from "~/utils/database-outage.server";
import { clientAddress } from "~/utils/client-address.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { createUserSession, redirectSignedIn, safeRedirect } from "~/utils/session.server";
import { emailSchema, fieldErrors } from "~/utils/validation";
import { readPageForm } from "~/utils/request-guard.server";
import { passRetryAfter } from "~/utils/route-headers";

// A refused attempt (429) or an outage (503) tells browsers and scripts when to come back.
export const headers = passRetryAfter;

export const meta: MetaFunction = () => [{ title: "Log in · Sheetmeter" }];

const loginSchema = z.object({
  email: emailSchema,
  password: z.string({ error: "Enter your password." }).min(1, "Enter your password."),
});

type ActionData = { errors: Record<string, string> };

// Without the throttle a password could be guessed without limit, so a log-in that cannot be throttled is refused.
const THROTTLE_UNAVAILABLE = "We can't check your log-in right now; try again in a minute.";
const throttleUnavailable = () =>
  data<ActionData>({ errors: { form: THROTTLE_UNAVAILABLE } }, { status: 503, headers: { "Retry-After": "60" } });

export async function loader({ request }: LoaderFunctionArgs) {
  await redirectSignedIn(request);
  return null;
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await readPageForm(request);
  const parsed = loginSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return data<ActionData>({ errors: fieldErrors(parsed.error) }, { status: 400 });

  const email = normalizeEmail(parsed.data.email);
  const address = clientAddress(request, context);
  const redis = getRedis();
  // Counted before the password is checked, so concurrent guesses cannot all slip past the limit.
  const admission = await admitLoginAttempt(redis, email, address).catch((error: unknown) => {
    console.error("log-in: the throttle (Redis) could not be read:", error);
    return undefined;
  });
  if (!admission) return throttleUnavailable();
  if (!admission.admitted) {
    const minutes = Math.ceil(admission.retryAfterSeconds / 60);
    const from = admission.lockedFor === "email" ? "for this email" : "from your network";
    return data<ActionData>(
      {
        errors: {
          form: `Too many failed log-ins ${from}. Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
        },
      },
      { status: 429, headers: { "Retry-After": String(admission.retryAfterSeconds) } },
    );
  }
  let user;
  try {
    user = await verifyLogin(getDb(), email, parsed.data.password);
  } catch (error) {
    if (!isDatabaseUnavailable(error)) throw error;
    console.error("login: database unavailable:", (error as Error).message.split("\n").at(-1));
    return data<ActionData>(
      { errors: { form: "Log-in is unavailable: our database is not answering. Try again in a minute." } },
      { status: 503, headers: { "Retry-After": String(DATABASE_RETRY_AFTER_SECONDS) } },
    );
  }
  if (!user) {
    return data<ActionData>({ errors: { form: "That email and password do not match an account." } }, { status: 400 });
  }
  // The password was right: a stale failure count only shortens this user's next allowance, so it does not block.
  await recordSuccessfulLogin(redis, email, address, admission.attemptId).catch((error: unknown) => {
    console.error("log-in: failed attempts could not be cleared (Redis):", error);
  });
  return createUserSession(request, user.id, safeRedirect(form.get("redirectTo")));
}

export default function LoginPage() {
  const actionData = useActionData<typeof action>();
  const [searchParams] = useSearchParams();
  const submitting = useNavigation().state === "submitting";
  const redirectTo = searchParams.get("redirectTo") ?? "/dashboard";
  return (
    <div className="mx-auto mt-6 max-w-sm">
      <h1 className="text-2xl font-semibold">Log in</h1>
      <Form method="post" className="mt-6 space-y-4" noValidate>
        <FormError message={actionData?.errors.form} />
        <input type="hidden" name="redirectTo" value={redirectTo} />
        <Field label="Email" name="email" type="email" autoComplete="email" required error={actionData?.errors.email} />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          error={actionData?.errors.password}
        />
        <button type="submit" className={`${primaryButton} w-full`} disabled={submitting}>
          {submitting ? "Logging in…" : "Log in"}
        </button>
      </Form>
      <p className="mt-4 text-sm text-slate-700">
        New to Sheetmeter?{" "}
        <Link
          to={{ pathname: "/signup", search: searchParams.toString() }}
          className="font-medium text-indigo-700 underline"
        >
          Create an account
        </Link>
      </p>
    </div>
  );
}
