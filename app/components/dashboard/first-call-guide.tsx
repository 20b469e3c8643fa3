import { Link } from "@remix-run/react";
import type { ReactNode } from "react";
import { CopyButton } from "~/components/copy-button";
import { curlCommand, KEY_VARIABLE, sheetEndpoint } from "~/utils/endpoints";
import type { SheetSummaryView } from "./types";

export interface OnboardingProgress {
  /** The newest sheet, whose endpoint the guide shows; null before the first upload. */
  firstSheet: SheetSummaryView | null;
  /** Whether the account has a key that is not revoked. */
  hasKey: boolean;
  /** Whether the live counter has seen a call this month (it polls, so this turns true while the page is open). */
  firstCallReceived: boolean;
}

/**
 * What a customer without any usage sees in place of the chart: three steps, each ticked off once done, ending
 * with "First call received" the moment the live counter sees it. The key itself is shown once, on /keys (with a
 * curl that runs as pasted); here it can only be named, so the command reads it from an environment variable rather
 * than showing a placeholder that would fail if pasted.
 */
export function FirstCallGuide({ appUrl, progress }: { appUrl: string; progress: OnboardingProgress }) {
  const { firstSheet, hasKey, firstCallReceived } = progress;
  const endpoint = firstSheet ? sheetEndpoint(appUrl, firstSheet.id) : null;
  return (
    <section
      data-testid="first-call-guide"
      aria-labelledby="first-call-heading"
      className="rounded-lg border border-indigo-200 bg-white p-4 shadow-sm sm:p-5"
    >
      <h2 id="first-call-heading" className="text-base font-semibold text-slate-900">
        {firstCallReceived ? "You're set up" : "Make your first API call"}
      </h2>
      {/* Polite and always present, so the change to "First call received" is announced when the counter sees it. */}
      <div role="status" aria-live="polite">
        {firstCallReceived ? (
          <p
            data-testid="first-call-received"
            className="mt-2 rounded border border-green-200 bg-green-50 px-3 py-2 text-sm font-medium text-green-900"
          >
            First call received. It is counted in the live counter above and joins the chart's history at the next
            hourly sync.
          </p>
        ) : null}
      </div>
      {firstCallReceived ? null : (
        <p className="mt-1 text-sm text-slate-700">Your usage chart starts with your first call. Three steps:</p>
      )}
      <ol className="mt-4 space-y-3 text-sm text-slate-800">
        <Step n={1} done={firstSheet !== null} title="Upload a sheet">
          {firstSheet && endpoint ? (
            <>
              <strong className="break-words">{firstSheet.name}</strong> is served at{" "}
              <code className="break-all rounded bg-slate-100 px-1 text-xs">{endpoint}</code>
            </>
          ) : (
            <>
              <Link to="/sheets" className="font-medium text-indigo-700 underline">
                Upload a CSV
              </Link>{" "}
              on the Sheets page; it gets its own endpoint.
            </>
          )}
        </Step>
        <Step n={2} done={hasKey} title="Create an API key">
          {hasKey ? (
            <>
              You have a key. Lost it?{" "}
              <Link to="/keys" className="font-medium text-indigo-700 underline">
                Create another
              </Link>{" "}
              (keys are shown only once).
            </>
          ) : (
            <>
              <Link to="/keys" className="font-medium text-indigo-700 underline">
                Create a key
              </Link>
              . The page then shows a curl command with your key and endpoint, ready to paste into a terminal.
            </>
          )}
        </Step>
        <Step n={3} done={firstCallReceived} title="Make a call">
          {firstCallReceived ? (
            <>
              Browse the{" "}
              <Link to="/docs" className="font-medium text-indigo-700 underline">
                API docs
              </Link>{" "}
              for filters, sorting and column selection.
            </>
          ) : endpoint ? (
            <CallInstructions endpoint={endpoint} />
          ) : (
            <>Once you have a sheet and a key, call the sheet's endpoint; this page ticks it off within seconds.</>
          )}
        </Step>
      </ol>
    </section>
  );
}

function CallInstructions({ endpoint }: { endpoint: string }) {
  const curl = curlCommand(endpoint, `$${KEY_VARIABLE}`);
  return (
    <>
      Right after creating a key, the key page gives you this command with the key filled in. Or set the{" "}
      <code className="rounded bg-slate-100 px-1 text-xs">{KEY_VARIABLE}</code> environment variable to your key and
      run:
      <div className="mt-2 flex items-start gap-2">
        <pre className="min-w-0 flex-1 whitespace-pre-wrap break-all rounded bg-slate-900 px-3 py-2 text-xs text-slate-50">
          <code>{curl}</code>
        </pre>
        <CopyButton text={curl} label="Copy the curl command" />
      </div>
      <p className="mt-2 text-slate-600">
        Each successful call counts once against your monthly quota; this page notices it within seconds.
      </p>
    </>
  );
}

function Step({ n, done, title, children }: { n: number; done: boolean; title: string; children: ReactNode }) {
  return (
    <li data-testid={`onboarding-step-${n}`} data-done={done} className="flex gap-3">
      <span
        aria-hidden="true"
        className={`mt-0.5 flex h-6 w-6 shrink-0 items-center justify-center rounded-full text-xs font-semibold ${
          done ? "bg-green-700 text-white" : "border-2 border-indigo-700 text-indigo-800"
        }`}
      >
        {done ? "✓" : n}
      </span>
      <div className="min-w-0">
        <p className={`font-semibold ${done ? "text-green-900" : "text-slate-900"}`}>
          {title}
          <span className="sr-only">{done ? " (done)" : " (to do)"}</span>
        </p>
        <div className="mt-0.5">{children}</div>
      </div>
    </li>
  );
}
