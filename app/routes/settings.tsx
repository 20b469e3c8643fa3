import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { handleAccountAction, isAccountIntent } from "~/auth/account-actions.server";
import { requireUserSession } from "~/auth/session-user.server";
import { AccountSettings, type AccountResult, DeleteAccount } from "~/components/account-settings";
import { PageHeader } from "~/components/app-shell";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { UsageAlerts, type UsageAlertsResult } from "~/components/usage-alerts";
import { admitTestEvent } from "~/models/action-limits.server";
import { deleteOtherSessions, listSessions } from "~/models/sessions.server";
import { listRecentDeliveries } from "~/models/webhook-deliveries.server";
import {
  getWebhookEndpoint,
  removeWebhookEndpoint,
  revealWebhookSecret,
  rotateWebhookSecret,
  setWebhookUrl,
  webhookUrlPolicy,
} from "~/models/webhook-endpoints.server";
import { sendTestEvent } from "~/models/webhook-events.server";
import { withDatabaseOutagePage } from "~/utils/database-outage.server";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { formatDate, formatDateTime } from "~/utils/format";
import { getRedis } from "~/utils/redis.server";
import { readPageForm } from "~/utils/request-guard.server";
import { passRetryAfter } from "~/utils/route-headers";

// A refused password re-entry or test event (429) and an outage (503) say when to come back.
export const headers = passRetryAfter;

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
      account: {
        email: user.email,
        plan: user.plan,
        monthlyLimit: user.monthlyLimit,
        createdAt: formatDate(user.createdAt),
      },
      // Not the secret: it leaves the server only when its owner asks for it (the "webhook-reveal" action), so it
      // is not in every load of this page, its prefetches, or whatever caches or logs a page's data on the way.
      webhook: endpoint && {
        url: endpoint.url,
        secretRotatedAt: formatDateTime(endpoint.secretRotatedAt),
        secretVersion: endpoint.secretRotatedAt.getTime(),
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

type ActionData = UsageAlertsResult | AccountResult | { intent: "logout-others"; ended: number };

export function action({ request }: ActionFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const { user, sessionId } = await requireUserSession(request);
    const form = await readPageForm(request);
    const intent = form.get("intent");
    const db = getDb();
    if (intent === "logout-others") {
      return data<ActionData>({ intent, ended: await deleteOtherSessions(db, user.id, sessionId) });
    }
    if (isAccountIntent(intent)) return handleAccountAction(request, intent, form, { user, sessionId });
    if (intent === "webhook-set") {
      const result = await setWebhookUrl(db, user.id, String(form.get("url") ?? ""), webhookUrlPolicy(getEnv()));
      if (!result.ok) return data<ActionData>({ intent, error: result.error }, { status: 400 });
      return data<ActionData>({ intent, saved: true });
    }
    if (intent === "webhook-remove") {
      return data<ActionData>({ intent, removed: await removeWebhookEndpoint(db, user.id) });
    }
    if (intent === "webhook-reveal") {
      const secret = await revealWebhookSecret(db, user.id);
      if (secret === null) return data<ActionData>({ intent, error: "Save a webhook URL first." }, { status: 400 });
      return data<ActionData>({ intent, secret }, { headers: { "Cache-Control": "no-store" } });
    }
    if (intent === "webhook-rotate") {
      const secret = await rotateWebhookSecret(db, user.id);
      // Sent back only to a page that was showing the old one, so a rotation keeps it on screen to copy.
      const keepShown = form.get("reveal") === "1" && secret !== null;
      return data<ActionData>(
        { intent, rotated: secret !== null, ...(keepShown ? { secret } : {}) },
        { headers: { "Cache-Control": "no-store" } },
      );
    }
    if (intent === "webhook-test") {
      // Each test is a QStash publish and a request to the customer's receiver: a held-down button must not
      // become a stream of either.
      const admission = await admitTestEvent(getRedis(), user.id).catch((error: unknown) => {
        console.error("settings: the test-event limit (Redis) could not be read:", error);
        return undefined;
      });
      if (!admission) {
        const error = "We can't send test events right now; try again in a minute.";
        return data<ActionData>(
          { intent, outcome: "unavailable", error },
          { status: 503, headers: { "Retry-After": "60" } },
        );
      }
      if (!admission.admitted) {
        const minutes = Math.ceil(admission.retryAfterSeconds / 60);
        return data<ActionData>(
          {
            intent,
            outcome: "rate_limited",
            error: `Too many test events. Try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
          },
          { status: 429, headers: { "Retry-After": String(admission.retryAfterSeconds) } },
        );
      }
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

const isAccountResult = (intent: string) =>
  intent === "change-email" || intent === "change-password" || intent === "delete-account";

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? "" : "s"}`;

export default function SettingsPage() {
  const { account, sessions, webhook, deliveries, awaitingCallbacks } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const busy = (intent: string) => navigation.state === "submitting" && navigation.formData?.get("intent") === intent;
  const intentOf = actionData && "intent" in actionData ? String(actionData.intent) : "";
  const othersEnded = actionData && "intent" in actionData && actionData.intent === "logout-others" ? actionData : null;
  const others = sessions.filter((session) => !session.current).length;
  const alertsResult = intentOf.startsWith("webhook-") ? (actionData as UsageAlertsResult) : null;
  const accountResult = isAccountResult(intentOf) ? (actionData as AccountResult) : null;

  return (
    <div className="space-y-8">
      <PageHeader
        title="Settings"
        description="Your account, where you are signed in, usage alerts, and deleting your account."
      />

      <AccountSettings account={account} result={accountResult} />

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

      <UsageAlerts
        endpoint={webhook}
        deliveries={deliveries}
        awaitingCallbacks={awaitingCallbacks}
        result={alertsResult}
      />

      <DeleteAccount email={account.email} result={accountResult} />
    </div>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
