import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useEffect, useRef } from "react";
import { z } from "zod";
import { requireUserSession } from "~/auth/session-user.server";
import { PageHeader } from "~/components/app-shell";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { Field, FormError, primaryButton } from "~/components/forms";
import { UsageAlerts, type UsageAlertsResult } from "~/components/usage-alerts";
import { deleteOtherSessions, listSessions } from "~/models/sessions.server";
import { changePassword } from "~/models/user.server";
import { listRecentDeliveries } from "~/models/webhook-deliveries.server";
import {
  getWebhookEndpoint,
  removeWebhookEndpoint,
  rotateWebhookSecret,
  setWebhookUrl,
  webhookUrlPolicy,
} from "~/models/webhook-endpoints.server";
import { sendTestEvent } from "~/models/webhook-events.server";
import { withDatabaseOutagePage } from "~/utils/database-outage.server";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { formatDateTime } from "~/utils/format";
import { fieldErrors, MIN_PASSWORD_LENGTH, newPasswordSchema } from "~/utils/validation";
import { readPageForm } from "~/utils/request-guard.server";

export const meta: MetaFunction = () => [{ title: "Settings · Sheetmeter" }];

export function loader({ request }: LoaderFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const { user, sessionId } = await requireUserSession(request);
    const db = getDb();
    const [sessions, endpoint, deliveries] = await Promise.all([
      listSessions(db, user.id),
      getWebhookEndpoint(db, user.id),
      listRecentDeliveries(db, user.id),
    ]);
    return {
      // The secret goes to this page only, which only its owner can load; it is hidden until they ask to see it.
      webhook: endpoint && {
        url: endpoint.url,
        secret: endpoint.secret,
        secretRotatedAt: formatDateTime(endpoint.secretRotatedAt),
      },
      // QStash settles a delivery within minutes (webhook-publish.server.ts); past that, polling would never end.
      awaitingCallbacks: deliveries.some(
        (delivery) => delivery.status === "queued" && Date.now() - delivery.createdAt.getTime() < 10 * 60_000,
      ),
      deliveries: deliveries.map((delivery) => ({
        id: delivery.id,
        event: delivery.type === "usage.threshold" ? `${delivery.threshold} % · ${delivery.period}` : "Test event",
        status: delivery.status,
        lastHttpStatus: delivery.lastHttpStatus,
        attempts: delivery.attempts,
        error: delivery.error,
        createdAt: formatDateTime(delivery.createdAt),
      })),
      sessions: sessions.map((session) => ({
        // Enough of the id to tell rows apart; the page never needs (or shows) a whole session id.
        key: session.id.slice(0, 12),
        current: session.id === sessionId,
        userAgent: session.userAgent,
        createdAt: formatDateTime(session.createdAt),
        lastSeenAt: formatDateTime(session.lastSeenAt),
      })),
    };
  });
}

const passwordChangeSchema = z.object({
  currentPassword: z.string({ error: "Enter your current password." }).min(1, "Enter your current password."),
  newPassword: newPasswordSchema,
});

type ActionData =
  | UsageAlertsResult
  | { intent: "logout-others"; ended: number }
  | { intent: "change-password"; changed: true; ended: number }
  | { intent: "change-password"; errors: Record<string, string> };

export function action({ request }: ActionFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const { user, sessionId } = await requireUserSession(request);
    const form = await readPageForm(request);
    const intent = form.get("intent");
    const db = getDb();
    if (intent === "logout-others") {
      return data<ActionData>({ intent, ended: await deleteOtherSessions(db, user.id, sessionId) });
    }
    if (intent === "change-password") {
      const parsed = passwordChangeSchema.safeParse(Object.fromEntries(form));
      if (!parsed.success) return data<ActionData>({ intent, errors: fieldErrors(parsed.error) }, { status: 400 });
      if (!(await changePassword(db, user.id, parsed.data))) {
        const errors = { currentPassword: "That is not your current password." };
        return data<ActionData>({ intent, errors }, { status: 400 });
      }
      // Whoever knew the old password may hold a session made with it; a new password is only worth having if
      // those sessions end with it. This browser, which just proved it knows the password, stays signed in.
      return data<ActionData>({ intent, changed: true, ended: await deleteOtherSessions(db, user.id, sessionId) });
    }
    if (intent === "webhook-set") {
      const result = await setWebhookUrl(db, user.id, String(form.get("url") ?? ""), webhookUrlPolicy(getEnv()));
      if (!result.ok) return data<ActionData>({ intent, error: result.error }, { status: 400 });
      return data<ActionData>({ intent, saved: true });
    }
    if (intent === "webhook-remove") {
      return data<ActionData>({ intent, removed: await removeWebhookEndpoint(db, user.id) });
    }
    if (intent === "webhook-rotate") {
      return data<ActionData>({ intent, rotated: (await rotateWebhookSecret(db, user.id)) !== null });
    }
    if (intent === "webhook-test") {
      const outcome = await sendTestEvent(user.id);
      const error =
        outcome.status === "no_endpoint"
          ? "Save a webhook URL first."
          : outcome.status === "failed_to_queue"
            ? "QStash did not take the event; try again in a minute."
            : undefined;
      const status = outcome.status === "no_endpoint" ? 400 : outcome.status === "failed_to_queue" ? 503 : 200;
      return data<ActionData>({ intent, outcome: outcome.status, error }, { status });
    }
    return data({ error: "Unknown action." }, { status: 400 });
  });
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;

export default function SettingsPage() {
  const { sessions, webhook, deliveries, awaitingCallbacks } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = (intent: string) => navigation.state === "submitting" && navigation.formData?.get("intent") === intent;
  const passwordForm = useRef<HTMLFormElement>(null);
  const passwordResult =
    actionData && "intent" in actionData && actionData.intent === "change-password" ? actionData : null;
  const passwordErrors = passwordResult && "errors" in passwordResult ? passwordResult.errors : undefined;
  const passwordChanged = passwordResult && "changed" in passwordResult ? passwordResult : null;
  const othersEnded = actionData && "intent" in actionData && actionData.intent === "logout-others" ? actionData : null;
  const others = sessions.filter((session) => !session.current).length;
  const alertsResult =
    actionData && "intent" in actionData && String(actionData.intent).startsWith("webhook-")
      ? (actionData as UsageAlertsResult)
      : null;

  useEffect(() => {
    if (passwordChanged) passwordForm.current?.reset();
  }, [passwordChanged]);

  return (
    <div className="space-y-8">
      <PageHeader title="Settings" description="Where you are signed in, your password, and usage alerts." />

      <section aria-labelledby="sessions-heading">
        <div className="flex flex-wrap items-end justify-between gap-3">
          <h2 id="sessions-heading" className="text-lg font-semibold">
            Sessions
          </h2>
          <Form method="post">
            <input type="hidden" name="intent" value="logout-others" />
            <button
              type="submit"
              disabled={others === 0 || busy("logout-others")}
              className="rounded border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-100 disabled:opacity-60"
            >
              {busy("logout-others") ? "Logging out…" : "Log out other sessions"}
            </button>
          </Form>
        </div>
        {othersEnded ? (
          <p role="status" className="mt-3 text-sm text-slate-700">
            Logged out {plural(othersEnded.ended, "other session")}.
          </p>
        ) : null}
        <ul className="mt-3 divide-y divide-slate-200 rounded-lg border border-slate-200 bg-white shadow-sm">
          {sessions.map((session) => (
            <li key={session.key} className="p-4">
              <p className="flex flex-wrap items-center gap-2">
                <span className="break-all font-medium">{session.userAgent ?? "Unknown browser"}</span>
                {session.current ? (
                  <span className="rounded bg-green-100 px-1.5 py-0.5 text-xs font-medium text-green-800">
                    This session
                  </span>
                ) : null}
              </p>
              <p className="mt-1 text-xs text-slate-600">
                Signed in {session.createdAt} · Last seen {session.lastSeenAt}
              </p>
            </li>
          ))}
        </ul>
      </section>

      <section
        aria-labelledby="password-heading"
        className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-6"
      >
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
          <FormError message={passwordErrors?.form} />
          <Field
            label="Current password"
            name="currentPassword"
            type="password"
            autoComplete="current-password"
            required
            error={passwordErrors?.currentPassword}
          />
          <Field
            label="New password"
            name="newPassword"
            type="password"
            autoComplete="new-password"
            required
            minLength={MIN_PASSWORD_LENGTH}
            error={passwordErrors?.newPassword}
          />
          <button type="submit" className={primaryButton} disabled={busy("change-password")}>
            {busy("change-password") ? "Changing…" : "Change password"}
          </button>
        </Form>
      </section>

      <UsageAlerts
        endpoint={webhook}
        deliveries={deliveries}
        awaitingCallbacks={awaitingCallbacks}
        result={alertsResult}
      />
    </div>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
