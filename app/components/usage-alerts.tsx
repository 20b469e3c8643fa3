import { Form, useNavigation, useRevalidator } from "@remix-run/react";
import { useEffect, useState } from "react";
import { ConfirmDelete } from "./confirm-delete";
import { CopyButton } from "./copy-button";
import { Field, FormError, primaryButton } from "./forms";
import { useHydrated } from "./use-hydrated";

export interface UsageAlertsEndpoint {
  url: string;
  secretRotatedAt: string;
  /** Changes with every rotation (its time in ms): what is on screen of the old secret is dropped then. */
  secretVersion: number;
}

export interface UsageAlertsDelivery {
  id: string;
  event: string;
  status: "queued" | "delivered" | "failed" | "failed_to_queue";
  lastHttpStatus: number | null;
  attempts: number;
  error: string | null;
  createdAt: string;
}

export type UsageAlertsResult =
  | { intent: "webhook-set"; error: string }
  | { intent: "webhook-set"; saved: true }
  | { intent: "webhook-remove"; removed: boolean }
  | { intent: "webhook-rotate"; rotated: boolean; secret?: string }
  | { intent: "webhook-reveal"; secret: string }
  | { intent: "webhook-reveal"; error: string }
  | { intent: "webhook-test"; outcome: string; error?: string };

const secondaryButton =
  "rounded border border-slate-300 bg-white px-3 py-1.5 text-sm hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 disabled:opacity-60";

const STATUS_LABEL: Record<UsageAlertsDelivery["status"], string> = {
  queued: "Queued",
  delivered: "Delivered",
  failed: "Failed",
  failed_to_queue: "Failed to queue",
};

const STATUS_STYLE: Record<UsageAlertsDelivery["status"], string> = {
  queued: "bg-slate-100 text-slate-800",
  delivered: "bg-green-100 text-green-800",
  failed: "bg-red-100 text-red-800",
  failed_to_queue: "bg-amber-100 text-amber-900",
};

// While a delivery is open its row changes as QStash's callbacks arrive; the page follows without a reload.
const REFRESH_WHILE_QUEUED_MS = 2000;

/** The "Usage alerts" section of /settings: the webhook URL, its signing secret, test events and recent deliveries. */
export function UsageAlerts({
  endpoint,
  deliveries,
  awaitingCallbacks,
  result,
}: {
  endpoint: UsageAlertsEndpoint | null;
  deliveries: UsageAlertsDelivery[];
  /** A recent delivery is still queued: its row will change as QStash's callbacks arrive. */
  awaitingCallbacks: boolean;
  result: UsageAlertsResult | null;
}) {
  const navigation = useNavigation();
  const busy = (intent: string) => navigation.state === "submitting" && navigation.formData?.get("intent") === intent;
  const urlError = result?.intent === "webhook-set" && "error" in result ? result.error : undefined;
  const revalidator = useRevalidator();
  useEffect(() => {
    if (!awaitingCallbacks) return;
    const timer = setInterval(() => {
      if (revalidator.state === "idle") revalidator.revalidate();
    }, REFRESH_WHILE_QUEUED_MS);
    return () => clearInterval(timer);
  }, [awaitingCallbacks, revalidator]);

  return (
    <section
      aria-labelledby="usage-alerts-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-6"
    >
      <h2 id="usage-alerts-heading" className="text-lg font-semibold">
        Usage alerts
      </h2>
      <p className="mt-1 text-sm text-slate-600">
        When your usage crosses 80 % and when it reaches 100 % of the month&apos;s limit, we send one signed event to
        your webhook. How to check the signature: <span className="font-mono">docs/webhooks.md</span>.
      </p>

      <Form method="post" className="mt-4 max-w-xl space-y-3" noValidate>
        <input type="hidden" name="intent" value="webhook-set" />
        {result?.intent === "webhook-set" && "saved" in result ? (
          <p role="status" className="rounded border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-800">
            Webhook URL saved.
          </p>
        ) : null}
        {result?.intent === "webhook-remove" ? (
          <p role="status" className="rounded border border-slate-200 bg-slate-50 px-3 py-2 text-sm text-slate-800">
            Webhook removed; no more alerts will be sent.
          </p>
        ) : null}
        <Field
          key={endpoint?.url ?? "none"}
          label="Webhook URL"
          name="url"
          type="url"
          inputMode="url"
          autoComplete="off"
          placeholder="https://example.com/hooks/sheetmeter"
          defaultValue={endpoint?.url ?? ""}
          required
          error={urlError}
        />
        <div className="flex flex-wrap gap-2">
          <button type="submit" className={primaryButton} disabled={busy("webhook-set")}>
            {busy("webhook-set") ? "Saving…" : endpoint ? "Update URL" : "Save URL"}
          </button>
        </div>
      </Form>

      {endpoint ? (
        <>
          <div className="mt-4 flex flex-wrap items-center gap-2">
            <Form method="post">
              <input type="hidden" name="intent" value="webhook-test" />
              <button type="submit" className={secondaryButton} disabled={busy("webhook-test")}>
                {busy("webhook-test") ? "Sending…" : "Send test event"}
              </button>
            </Form>
            <ConfirmDelete summary="Remove…" submitLabel="Remove webhook" fields={{ intent: "webhook-remove" }}>
              No more alerts are sent, and the signing secret is deleted with the URL.
            </ConfirmDelete>
          </div>
          {result?.intent === "webhook-test" ? <TestOutcome result={result} /> : null}
          <SigningSecret
            key={endpoint.secretVersion}
            endpoint={endpoint}
            rotated={result?.intent === "webhook-rotate" && result.rotated}
            secretFromServer={
              (result?.intent === "webhook-reveal" || result?.intent === "webhook-rotate") && "secret" in result
                ? result.secret
                : undefined
            }
          />
        </>
      ) : null}

      <Deliveries deliveries={deliveries} />
    </section>
  );
}

function TestOutcome({ result }: { result: Extract<UsageAlertsResult, { intent: "webhook-test" }> }) {
  if (result.outcome === "queued") {
    return (
      <p role="status" className="mt-3 text-sm text-slate-700">
        Test event queued; its delivery appears below.
      </p>
    );
  }
  return <FormError message={result.error ?? "The test event could not be sent."} />;
}

/**
 * The secret is not part of the page's data: "Reveal" asks the server for it (a POST), and it is on screen until
 * hidden or rotated (the component is keyed by the secret's version, so nothing of the old one survives; a
 * rotation made while it was shown sends the new one back, to copy into the receiver).
 */
function SigningSecret({
  endpoint,
  rotated,
  secretFromServer,
}: {
  endpoint: UsageAlertsEndpoint;
  rotated: boolean;
  secretFromServer: string | undefined;
}) {
  const hydrated = useHydrated();
  const navigation = useNavigation();
  // The last secret the server sent, kept while other forms on the page are sent (their answers replace the one
  // that carried it), and whether it is on screen. Updated during render, React's way to follow a prop.
  const [known, setKnown] = useState(secretFromServer);
  const [revealed, setRevealed] = useState(Boolean(secretFromServer));
  if (secretFromServer && secretFromServer !== known) {
    setKnown(secretFromServer);
    setRevealed(true);
  }
  const shown = revealed ? known : undefined;
  const revealing = navigation.state === "submitting" && navigation.formData?.get("intent") === "webhook-reveal";
  return (
    <div className="mt-6">
      <h3 className="text-sm font-medium text-slate-800">Signing secret</h3>
      <p className="mt-1 text-xs text-slate-600">
        Check each event&apos;s <span className="font-mono">Sheetmeter-Signature</span> with it. Last rotated{" "}
        {endpoint.secretRotatedAt}.
      </p>
      {rotated ? (
        <p role="status" className="mt-2 text-sm text-green-800">
          Secret rotated. Events are now signed with the new secret only.
        </p>
      ) : null}
      <div className="mt-2 flex flex-wrap items-center gap-2">
        <code
          data-testid="webhook-secret"
          className="min-w-0 max-w-full break-all rounded bg-slate-100 px-2 py-1 font-mono text-sm"
        >
          {shown ?? "whsec_" + "•".repeat(24)}
        </code>
        {shown && hydrated ? (
          <button type="button" className={secondaryButton} aria-pressed onClick={() => setRevealed(false)}>
            Hide
          </button>
        ) : (
          <Form method="post" preventScrollReset>
            <input type="hidden" name="intent" value="webhook-reveal" />
            <button
              type="submit"
              className={secondaryButton}
              aria-pressed={false}
              disabled={revealing}
              onClick={(event) => {
                // Already sent once: show it again without asking the server.
                if (!known) return;
                event.preventDefault();
                setRevealed(true);
              }}
            >
              Reveal
            </button>
          </Form>
        )}
        {shown ? <CopyButton text={shown} label="Copy signing secret" /> : null}
        <ConfirmDelete
          summary="Rotate…"
          submitLabel="Rotate secret"
          fields={{ intent: "webhook-rotate", reveal: shown ? "1" : "" }}
        >
          The current secret stops working at once: update your receiver with the new one.
        </ConfirmDelete>
      </div>
    </div>
  );
}

function Deliveries({ deliveries }: { deliveries: UsageAlertsDelivery[] }) {
  return (
    <div className="mt-6">
      <h3 className="text-sm font-medium text-slate-800">Recent deliveries</h3>
      {deliveries.length === 0 ? (
        <p className="mt-2 text-sm text-slate-600">No events sent yet. Send a test event to try your receiver.</p>
      ) : (
        <table className="mt-2 w-full table-fixed text-left text-sm" data-testid="webhook-deliveries">
          <thead className="text-xs text-slate-600">
            <tr>
              <th scope="col" className="py-2 pr-2 font-medium">
                Event
              </th>
              <th scope="col" className="w-28 py-2 pr-2 font-medium">
                Status
              </th>
              <th scope="col" className="w-14 py-2 pr-2 font-medium">
                HTTP
              </th>
              <th scope="col" className="hidden py-2 font-medium sm:table-cell">
                Sent
              </th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-200">
            {deliveries.map((delivery) => (
              <tr key={delivery.id} data-status={delivery.status}>
                <td className="break-words py-2 pr-2">
                  <span className="font-mono text-xs">{delivery.event}</span>
                  <span className="block text-xs text-slate-600 sm:hidden">{delivery.createdAt}</span>
                  {delivery.error && delivery.status !== "delivered" ? (
                    <span className="block break-all text-xs text-slate-600">{delivery.error}</span>
                  ) : null}
                </td>
                <td className="py-2 pr-2">
                  <span className={`rounded px-1.5 py-0.5 text-xs font-medium ${STATUS_STYLE[delivery.status]}`}>
                    {STATUS_LABEL[delivery.status]}
                  </span>
                  {delivery.attempts > 1 ? (
                    <span className="block text-xs text-slate-600">{delivery.attempts} attempts</span>
                  ) : null}
                </td>
                <td className="py-2 pr-2 font-mono text-xs">{delivery.lastHttpStatus ?? "—"}</td>
                <td className="hidden py-2 text-xs text-slate-600 sm:table-cell">{delivery.createdAt}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
