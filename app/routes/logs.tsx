import type { HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useLoaderData } from "@remix-run/react";
import { requireUser } from "~/auth/session-user.server";
import { PageHeader } from "~/components/app-shell";
import { EmptyState } from "~/components/empty-state";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { listApiKeys } from "~/models/api-keys.server";
import { listRecentRequests } from "~/models/request-outcomes.server";
import { withDatabaseOutagePage } from "~/utils/database-outage.server";
import { getDb } from "~/utils/db.server";
import { formatUtcTimestamp } from "~/utils/format";
import { getRedis } from "~/utils/redis.server";
import { filterRequests, parseLogFilter, REQUEST_LOG_LENGTH, STATUS_FILTERS } from "~/utils/request-log";

export const meta: MetaFunction = () => [{ title: "Request log · Sheetmeter" }];

export const headers: HeadersFunction = ({ loaderHeaders }) => loaderHeaders;

export function loader({ request }: LoaderFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const user = await requireUser(request);
    const filter = parseLogFilter(new URL(request.url).searchParams);
    const [requests, keys] = await Promise.all([
      // The log lives in Redis only; when Redis does not answer (within the client's deadline) the page says so.
      listRecentRequests(getRedis(), user.id).catch((error: unknown) => {
        console.error("logs: request log unavailable:", error);
        return null;
      }),
      listApiKeys(getDb(), user.id),
    ]);
    return data(
      {
        filter,
        total: requests?.length ?? 0,
        requests: requests && filterRequests(requests, filter),
        keys: keys.map((key) => ({ prefix: key.prefix, name: key.name, revoked: key.revokedAt !== null })),
      },
      { headers: { "Cache-Control": "private, no-store" } },
    );
  });
}

const selectClass =
  "mt-1 block w-full rounded-md border border-slate-300 bg-white py-1.5 pl-2 pr-7 text-sm text-slate-800 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 sm:w-auto";

function statusClass(status: number): string {
  if (status < 300) return "bg-emerald-50 text-emerald-800 ring-emerald-200";
  if (status < 400) return "bg-slate-100 text-slate-800 ring-slate-300";
  if (status === 429) return "bg-amber-50 text-amber-900 ring-amber-300";
  return "bg-red-50 text-red-800 ring-red-200";
}

export default function Logs() {
  const { filter, total, requests, keys } = useLoaderData<typeof loader>();
  const filtered = filter.status !== "all" || filter.key !== "";
  return (
    <div>
      <PageHeader
        title="Request log"
        description={`The last ${REQUEST_LOG_LENGTH} calls to your API, refused ones included. Times are UTC; query values are not kept.`}
      />
      <Form method="get" className="flex flex-wrap items-end gap-3" aria-label="Filter requests">
        <div>
          <label htmlFor="log-status" className="block text-sm font-medium text-slate-800">
            Status
          </label>
          <select
            id="log-status"
            name="status"
            // Keyed by the value, so a client-side navigation ("Clear filters") resets what the select shows.
            key={filter.status}
            defaultValue={filter.status}
            className={selectClass}
          >
            {STATUS_FILTERS.map((option) => (
              <option key={option.value} value={option.value}>
                {option.label}
              </option>
            ))}
          </select>
        </div>
        <div>
          <label htmlFor="log-key" className="block text-sm font-medium text-slate-800">
            Key
          </label>
          <select id="log-key" name="key" key={filter.key} defaultValue={filter.key} className={selectClass}>
            <option value="">All keys</option>
            {keys.map((key) => (
              <option key={key.prefix} value={key.prefix}>
                {key.name} ({key.prefix}…){key.revoked ? " — revoked" : ""}
              </option>
            ))}
          </select>
        </div>
        <button
          type="submit"
          className="rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm font-medium text-slate-800 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
        >
          Filter
        </button>
        {filtered ? (
          <Link to="/logs" className="py-1.5 text-sm font-medium text-indigo-700 hover:underline">
            Clear filters
          </Link>
        ) : null}
      </Form>

      {requests === null ? (
        <p
          role="alert"
          className="mt-4 rounded-md border border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-900"
        >
          The request log cannot be read right now (our Redis is not answering). Calls are still being served; try again
          in a minute.
        </p>
      ) : requests.length === 0 ? (
        <EmptyState
          iconPaths={<path d="M4 6h16M4 12h16M4 18h10" />}
          title={total === 0 ? "No requests yet" : "No requests match these filters"}
        >
          {total === 0 ? (
            <>
              Calls to your sheets&apos; API appear here within a second, refused ones too. Create a key on{" "}
              <Link to="/keys" className="font-medium text-indigo-700 hover:underline">
                API keys
              </Link>{" "}
              and make a call.
            </>
          ) : (
            <>
              {total} recent {total === 1 ? "request does" : "requests do"} not match.{" "}
              <Link to="/logs" className="font-medium text-indigo-700 hover:underline">
                Show all
              </Link>
            </>
          )}
        </EmptyState>
      ) : (
        <>
          {/* Phones: one card per request, nothing cut off or scrolled sideways. */}
          <ul
            data-testid="request-log-cards"
            aria-label="Recent requests, newest first"
            className="mt-4 divide-y divide-slate-100 rounded-lg border border-slate-200 bg-white sm:hidden"
          >
            {requests.map((entry, i) => (
              <li key={`${entry.at}-${i}`} data-status={entry.status} className="space-y-1 px-3 py-2.5 text-sm">
                <div className="flex items-center justify-between gap-2">
                  <span
                    className={`inline-block rounded px-1.5 py-0.5 text-xs font-semibold tabular-nums ring-1 ring-inset ${statusClass(entry.status)}`}
                  >
                    {entry.status}
                  </span>
                  <span className="tabular-nums text-slate-700">{formatUtcTimestamp(entry.at)}</span>
                </div>
                <p className="break-all font-mono text-xs text-slate-800">GET {entry.path}</p>
                <p className="flex justify-between gap-2 text-xs text-slate-600">
                  <span className="font-mono">{entry.keyPrefix ? `${entry.keyPrefix}…` : "no key"}</span>
                  <span className="tabular-nums">{entry.ms} ms</span>
                </p>
              </li>
            ))}
          </ul>
          <div className="mt-4 hidden overflow-x-auto rounded-lg border border-slate-200 bg-white sm:block">
            <table className="min-w-full text-left text-sm" data-testid="request-log">
              <caption className="sr-only">
                Recent requests{filtered ? ", filtered" : ""}, newest first ({requests.length} of {total})
              </caption>
              <thead className="bg-slate-50 text-xs uppercase tracking-wide text-slate-600">
                <tr>
                  <th scope="col" className="px-3 py-2 font-medium">
                    Time (UTC)
                  </th>
                  <th scope="col" className="px-3 py-2 font-medium">
                    Status
                  </th>
                  <th scope="col" className="px-3 py-2 font-medium">
                    Key
                  </th>
                  <th scope="col" className="px-3 py-2 font-medium">
                    Request
                  </th>
                  <th scope="col" className="px-3 py-2 text-right font-medium">
                    Duration
                  </th>
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {requests.map((entry, i) => (
                  <tr key={`${entry.at}-${i}`} data-status={entry.status}>
                    <td className="whitespace-nowrap px-3 py-2 tabular-nums text-slate-700">
                      {formatUtcTimestamp(entry.at)}
                    </td>
                    <td className="px-3 py-2">
                      <span
                        className={`inline-block rounded px-1.5 py-0.5 text-xs font-semibold tabular-nums ring-1 ring-inset ${statusClass(entry.status)}`}
                      >
                        {entry.status}
                      </span>
                    </td>
                    <td className="whitespace-nowrap px-3 py-2 font-mono text-xs text-slate-700">
                      {entry.keyPrefix ? `${entry.keyPrefix}…` : <span className="font-sans text-slate-500">none</span>}
                    </td>
                    <td className="max-w-[18rem] break-all px-3 py-2 font-mono text-xs text-slate-800">
                      GET {entry.path}
                    </td>
                    <td className="whitespace-nowrap px-3 py-2 text-right tabular-nums text-slate-700">
                      {entry.ms} ms
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </div>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
