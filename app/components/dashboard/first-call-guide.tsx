import { Link } from "@remix-run/react";
import { CopyButton } from "~/components/copy-button";
import { SHEET_API_PATH, sheetEndpoint } from "~/utils/endpoints";
import type { SheetSummaryView } from "./types";

// The key itself is shown once, on /keys, and never stored; the guide can only show its shape.
const PLACEHOLDER_KEY = "sm_live_…";

/**
 * What a customer without any usage sees in place of the chart: how to make the first call, with their own endpoint
 * when they already have a sheet.
 */
export function FirstCallGuide({ appUrl, firstSheet }: { appUrl: string; firstSheet: SheetSummaryView | null }) {
  const endpoint = sheetEndpoint(appUrl, firstSheet?.id ?? "<sheet-id>");
  const curl = `curl -H "Authorization: Bearer ${PLACEHOLDER_KEY}" ${endpoint}`;
  return (
    <section
      data-testid="first-call-guide"
      aria-labelledby="first-call-heading"
      className="rounded-lg border border-indigo-200 bg-white p-4 shadow-sm sm:p-5"
    >
      <h2 id="first-call-heading" className="text-base font-semibold text-slate-900">
        Make your first API call
      </h2>
      <p className="mt-1 text-sm text-slate-700">
        Your usage chart starts with your first call. Three steps get you there:
      </p>
      <ol className="mt-4 list-decimal space-y-3 pl-5 text-sm text-slate-800 marker:font-semibold marker:text-indigo-700">
        <li>
          {firstSheet ? (
            <>
              You have a sheet: <strong className="break-words">{firstSheet.name}</strong>. Its rows are served at{" "}
              <code className="break-all rounded bg-slate-100 px-1 text-xs">{endpoint}</code>
            </>
          ) : (
            <>
              <Link to="/sheets" className="font-medium text-indigo-700 underline">
                Upload a CSV
              </Link>{" "}
              on the Sheets page. Each sheet gets an endpoint like{" "}
              <code className="break-all rounded bg-slate-100 px-1 text-xs">
                {appUrl}
                {SHEET_API_PATH}/&lt;sheet-id&gt;
              </code>
            </>
          )}
        </li>
        <li>
          <Link to="/keys" className="font-medium text-indigo-700 underline">
            Create an API key
          </Link>
          . It is shown once; keep it somewhere safe.
        </li>
        <li>
          Call your endpoint with the key in the{" "}
          <code className="rounded bg-slate-100 px-1 text-xs">Authorization</code> header:
          <div className="mt-2 flex items-start gap-2">
            <pre className="min-w-0 flex-1 whitespace-pre-wrap break-all rounded bg-slate-900 px-3 py-2 text-xs text-slate-50">
              <code>{curl}</code>
            </pre>
            <CopyButton text={curl} label="Copy the curl command" />
          </div>
          <p className="mt-2 text-slate-600">
            Replace <code className="rounded bg-slate-100 px-1 text-xs">{PLACEHOLDER_KEY}</code> with your key. Each
            successful call counts once against your monthly quota; the counter above moves within seconds.
          </p>
        </li>
      </ol>
    </section>
  );
}
