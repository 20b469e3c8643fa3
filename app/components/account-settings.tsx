import { Form, useNavigation } from "@remix-run/react";
import { useEffect, useRef } from "react";
import { MIN_PASSWORD_LENGTH } from "~/utils/validation";
import { Field, FormError, primaryButton } from "./forms";

export interface AccountSummary {
  email: string;
  plan: string;
  monthlyLimit: number;
  createdAt: string;
}

export type AccountResult =
  | { intent: "change-email" | "change-password" | "delete-account"; errors: Record<string, string> }
  | { intent: "change-email"; changed: true; email: string }
  | { intent: "change-password"; changed: true; ended: number };

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;
const sectionClass = "rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-6";

/** The "Account" part of /settings: who you are and on what plan, your email and password, and deleting it all. */
export function AccountSettings({ account, result }: { account: AccountSummary; result: AccountResult | null }) {
  const navigation = useNavigation();
  const busy = (intent: string) => navigation.state === "submitting" && navigation.formData?.get("intent") === intent;
  const errorsOf = (intent: AccountResult["intent"]) =>
    result?.intent === intent && "errors" in result ? result.errors : undefined;
  const emailChanged = result?.intent === "change-email" && "changed" in result ? result : null;
  const passwordChanged = result?.intent === "change-password" && "changed" in result ? result : null;
  const emailForm = useRef<HTMLFormElement>(null);
  const passwordForm = useRef<HTMLFormElement>(null);
  useEffect(() => {
    if (emailChanged) emailForm.current?.reset();
  }, [emailChanged]);
  useEffect(() => {
    if (passwordChanged) passwordForm.current?.reset();
  }, [passwordChanged]);

  return (
    <>
      <section aria-labelledby="account-heading" className={sectionClass} data-testid="account">
        <h2 id="account-heading" className="text-lg font-semibold">
          Account
        </h2>
        <dl className="mt-3 grid gap-x-6 gap-y-2 text-sm sm:grid-cols-[auto_1fr]">
          <dt className="text-slate-600">Email</dt>
          <dd className="break-all font-medium" data-testid="account-email">
            {account.email}
          </dd>
          <dt className="text-slate-600">Plan</dt>
          <dd className="font-medium capitalize">{account.plan}</dd>
          <dt className="text-slate-600">Monthly limit</dt>
          <dd className="font-medium">{account.monthlyLimit.toLocaleString("en-US")} API calls</dd>
          <dt className="text-slate-600">Member since</dt>
          <dd>{account.createdAt}</dd>
        </dl>

        <h3 className="mt-6 text-base font-semibold">Change email</h3>
        <Form ref={emailForm} method="post" className="mt-3 max-w-sm space-y-4" noValidate>
          <input type="hidden" name="intent" value="change-email" />
          {emailChanged ? (
            <p role="status" className="rounded border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
              Your email is now {emailChanged.email}; use it to log in.
            </p>
          ) : null}
          <FormError message={errorsOf("change-email")?.form} />
          <Field
            label="New email"
            name="email"
            type="email"
            autoComplete="email"
            required
            error={errorsOf("change-email")?.email}
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            error={errorsOf("change-email")?.password}
          />
          <button type="submit" className={primaryButton} disabled={busy("change-email")}>
            {busy("change-email") ? "Changing…" : "Change email"}
          </button>
        </Form>
      </section>

      <section aria-labelledby="password-heading" className={sectionClass}>
        <h2 id="password-heading" className="text-lg font-semibold">
          Change password
        </h2>
        <p className="mt-1 text-sm text-slate-600">Every other session is logged out; this one stays signed in.</p>
        <Form ref={passwordForm} method="post" className="mt-4 max-w-sm space-y-4" noValidate>
          <input type="hidden" name="intent" value="change-password" />
          {passwordChanged ? (
            <p role="status" className="rounded border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
              Password changed; {plural(passwordChanged.ended, "other session")} logged out.
            </p>
          ) : null}
          <FormError message={errorsOf("change-password")?.form} />
          <Field
            label="Current password"
            name="currentPassword"
            type="password"
            autoComplete="current-password"
            required
            error={errorsOf("change-password")?.currentPassword}
          />
          <Field
            label="New password"
            name="newPassword"
            type="password"
            autoComplete="new-password"
            required
            minLength={MIN_PASSWORD_LENGTH}
            error={errorsOf("change-password")?.newPassword}
          />
          <button type="submit" className={primaryButton} disabled={busy("change-password")}>
            {busy("change-password") ? "Changing…" : "Change password"}
          </button>
        </Form>
      </section>
    </>
  );
}

/** "Delete my account", at the foot of /settings: confirmed by typing the email and the password. */
export function DeleteAccount({ email, result }: { email: string; result: AccountResult | null }) {
  const navigation = useNavigation();
  const busy = navigation.state === "submitting" && navigation.formData?.get("intent") === "delete-account";
  const errors = result?.intent === "delete-account" && "errors" in result ? result.errors : undefined;
  return (
    <section aria-labelledby="delete-account-heading" className="rounded-lg border border-red-200 bg-white p-4 sm:p-6">
      <h2 id="delete-account-heading" className="text-lg font-semibold text-red-900">
        Delete my account
      </h2>
      <p className="mt-1 text-sm text-slate-700">
        Deletes your API keys (they stop working at once), sheets and their rows, usage history, webhook and its
        deliveries, and every session. This cannot be undone.
      </p>
      {/* Open from the start after a refused attempt, so the error is seen next to the fields it is about. */}
      <details className="mt-3" open={errors ? true : undefined}>
        <summary className="inline-block cursor-pointer list-none rounded border border-red-200 px-3 py-1.5 text-sm text-red-700 hover:bg-red-50">
          Delete my account…
        </summary>
        <Form method="post" className="mt-3 max-w-sm space-y-4 rounded border border-red-200 bg-red-50 p-3" noValidate>
          <input type="hidden" name="intent" value="delete-account" />
          <FormError message={errors?.form} />
          <Field
            label={`Type your email (${email}) to confirm`}
            name="confirmEmail"
            type="email"
            autoComplete="off"
            required
            error={errors?.confirmEmail}
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autoComplete="current-password"
            required
            error={errors?.password}
          />
          <button
            type="submit"
            disabled={busy}
            className="rounded bg-red-700 px-3 py-2 text-sm font-medium text-white hover:bg-red-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-red-700 focus-visible:ring-offset-2 disabled:opacity-60"
          >
            {busy ? "Deleting…" : "Delete my account and its data"}
          </button>
        </Form>
      </details>
    </section>
  );
}
