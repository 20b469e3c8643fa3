import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useNavigation, useSearchParams } from "@remix-run/react";
import { z } from "zod";
import { Field, FormError, primaryButton } from "~/components/forms";
import { admitSignupAttempt } from "~/models/signup-throttle.server";
import { createUser, EmailTakenError } from "~/models/user.server";
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from "~/utils/database-outage.server";
import { clientAddress } from "~/utils/client-address.server";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { createUserSession, redirectSignedIn, safeRedirect } from "~/utils/session.server";
import { emailSchema, fieldErrors, MIN_PASSWORD_LENGTH, newPasswordSchema } from "~/utils/validation";
import { readPageForm } from "~/utils/request-guard.server";
import { passRetryAfter } from "~/utils/route-headers";

// A refused attempt (429) or an outage (503) tells browsers and scripts when to come back.
export const headers = passRetryAfter;

export const meta: MetaFunction = () => [{ title: "Sign up · Sheetmeter" }];

const signupSchema = z.object({ email: emailSchema, password: newPasswordSchema });

export async function loader({ request }: LoaderFunctionArgs) {
  await redirectSignedIn(request);
  return null;
}

export async function action({ request, context }: ActionFunctionArgs) {
  const form = await readPageForm(request);
  const parsed = signupSchema.safeParse(Object.fromEntries(form));
  if (!parsed.success) return data({ errors: fieldErrors(parsed.error) }, { status: 400 });
  // Counted before the password is hashed; like log-in, a sign-up that cannot be throttled is refused.
  const admission = await admitSignupAttempt(getRedis(), clientAddress(request, context)).catch((error: unknown) => {
    console.error("signup: the throttle (Redis) could not be read:", error);
    return undefined;
  });
  if (!admission?.admitted) {
    const retryAfterSeconds = admission ? admission.retryAfterSeconds : 60;
    const message = admission
      ? `Too many sign-ups from your network. Try again in ${Math.ceil(retryAfterSeconds / 60)} minutes.`
      : "We can't create accounts right now; nothing was created. Try again in a minute.";
    return data(
      { errors: { form: message } as Record<string, string> },
      { status: admission ? 429 : 503, headers: { "Retry-After": String(retryAfterSeconds) } },
    );
  }
  try {
    const user = await createUser(getDb(), parsed.data);
    return createUserSession(request, user.id, safeRedirect(form.get("redirectTo")));
  } catch (error) {
    if (error instanceof EmailTakenError) {
      return data(
        { errors: { email: "That email already has an account. Log in instead?" } as Record<string, string> },
        { status: 400 },
      );
    }
    if (isDatabaseUnavailable(error)) {
      console.error("signup: database unavailable:", (error as Error).message.split("\n").at(-1));
      return data(
        {
          errors: {
            form: "Sign-up is unavailable: our database is not answering. Nothing was created; try again in a minute.",
          } as Record<string, string>,
        },
        { status: 503, headers: { "Retry-After": String(DATABASE_RETRY_AFTER_SECONDS) } },
      );
    }
    throw error;
  }
}

export default function SignupPage() {
  const actionData = useActionData<typeof action>();
  const [searchParams] = useSearchParams();
  const submitting = useNavigation().state === "submitting";
  const redirectTo = searchParams.get("redirectTo") ?? "/dashboard";
  return (
    <div className="mx-auto mt-6 max-w-sm">
      <h1 className="text-2xl font-semibold">Create your account</h1>
      <p className="mt-1 text-sm text-slate-600">Free plan: 1,000 API calls a month.</p>
      <Form method="post" className="mt-6 space-y-4" noValidate>
        <FormError message={actionData?.errors.form} />
        <input type="hidden" name="redirectTo" value={redirectTo} />
        <Field label="Email" name="email" type="email" autoComplete="email" required error={actionData?.errors.email} />
        <Field
          label="Password"
          name="password"
          type="password"
          autoComplete="new-password"
          required
          minLength={MIN_PASSWORD_LENGTH}
          error={actionData?.errors.password}
        />
        <button type="submit" className={`${primaryButton} w-full`} disabled={submitting}>
          {submitting ? "Creating account…" : "Sign up"}
        </button>
      </Form>
      <p className="mt-4 text-sm text-slate-700">
        Already have an account?{" "}
        <Link
          to={{ pathname: "/login", search: searchParams.toString() }}
          className="font-medium text-indigo-700 underline"
        >
          Log in
        </Link>
      </p>
    </div>
  );
}
