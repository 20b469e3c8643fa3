import { Link } from "@remix-run/react";
import { formatCount, formatPercent } from "~/utils/format";
import type { UsageRange, UsageView } from "~/utils/usage-ranges";
import type { KeyUsageView, Part } from "./types";
import { chartSearch } from "./usage-chart";

/**
 * This month's calls per API key: which key spends the quota. Each row links to the chart drawn for that key.
 * The share is of the calls made with keys this month, so the rows add up to 100 %.
 */
export function KeyUsageTable({
  byKey,
  range,
  view,
  selectedKeyId,
}: {
  byKey: Part<{ source: "live" | "snapshot"; keys: KeyUsageView[] }>;
  range: UsageRange;
  view: UsageView;
  selectedKeyId: string | null;
}) {
  const total = byKey.ok ? byKey.data.keys.reduce((sum, key) => sum + key.used, 0) : 0;
  return (
    <section
      data-testid="usage-by-key"
      aria-labelledby="usage-by-key-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-5"
    >
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="usage-by-key-heading" className="text-base font-semibold text-slate-900">
          Calls by API key this month
        </h2>
        <Link to="/keys" className="text-sm font-medium text-indigo-700 underline hover:text-indigo-900">
          Manage keys
        </Link>
      </div>
      {!byKey.ok ? (
        <p className="mt-3 text-sm text-slate-700">
          The calls per key cannot be loaded right now; the total above is still accurate. Try reloading in a minute.
        </p>
      ) : byKey.data.keys.length === 0 ? (
        <p className="mt-3 text-sm text-slate-700">
          No API keys yet.{" "}
          <Link to="/keys" className="font-medium text-indigo-700 underline">
            Create one
          </Link>{" "}
          to call your sheets; each key&apos;s calls are listed here.
        </p>
      ) : (
        <>
          {byKey.data.source === "snapshot" ? (
            <p className="mt-2 text-sm text-amber-800">
              Live counts are unavailable; these are the counts of the last hourly sync.
            </p>
          ) : null}
          <table className="mt-3 w-full table-fixed text-left text-sm tabular-nums">
            <caption className="sr-only">Calls made with each API key this month, and their share of all calls</caption>
            <thead className="text-slate-700">
              <tr className="border-b border-slate-200">
                <th scope="col" className="w-[40%] py-1.5 pr-2 font-medium">
                  Key
                </th>
                <th scope="col" className="hidden py-1.5 pr-2 font-medium sm:table-cell">
                  Prefix
                </th>
                <th scope="col" className="py-1.5 pr-2 text-right font-medium">
                  Calls
                </th>
                <th scope="col" className="py-1.5 text-right font-medium">
                  Share
                </th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100 text-slate-800">
              {byKey.data.keys.map((key) => (
                <tr key={key.id} data-key-id={key.id} aria-current={key.id === selectedKeyId ? "true" : undefined}>
                  <th scope="row" className="break-words py-1.5 pr-2 font-normal">
                    <Link
                      to={chartSearch(range, view, key.id)}
                      preventScrollReset
                      className="font-medium text-indigo-700 underline underline-offset-2 hover:text-indigo-900"
                      aria-label={`Show ${key.name} on the chart`}
                    >
                      {key.name}
                    </Link>
                    {key.revoked ? <span className="ml-1 text-xs text-slate-600">(revoked)</span> : null}
                    <code className="block text-xs text-slate-600 sm:hidden">{key.prefix}…</code>
                  </th>
                  <td className="hidden py-1.5 pr-2 sm:table-cell">
                    <code className="text-xs text-slate-700">{key.prefix}…</code>
                  </td>
                  <td className="py-1.5 pr-2 text-right" data-testid="key-calls">
                    {formatCount(key.used)}
                  </td>
                  <td className="py-1.5 text-right" data-testid="key-share">
                    {total > 0 ? formatPercent(key.used, total) : "—"}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
