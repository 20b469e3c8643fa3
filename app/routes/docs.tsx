import type { MetaFunction } from "@remix-run/node";
import { Link, useLoaderData } from "@remix-run/react";
import type { ReactNode } from "react";
import { PageHeader } from "~/components/app-shell";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { HorizontalScroll } from "~/components/horizontal-scroll";
import { curlCommand, KEY_VARIABLE, SHEET_API_PATH, USAGE_API_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";

/**
 * The consumer API's reference, public (a customer's developers have no account). It says what docs/api.md says;
 * the operator-only parts of that file (caches, Redis transport, the benchmark) stay there.
 */
export const meta: MetaFunction = () => [
  { title: "API docs · Sheetmeter" },
  {
    name: "description",
    content: "Sheetmeter's JSON API: parameters, errors, rate-limit headers and the monthly quota.",
  },
];

export function loader() {
  return { appUrl: getEnv().APP_URL };
}

const SECTIONS = [
  { id: "authentication", title: "Authentication" },
  { id: "sheets", title: "Read a sheet" },
  { id: "parameters", title: "Parameters" },
  { id: "conditional-requests", title: "ETag and 304" },
  { id: "quota", title: "The quota" },
  { id: "headers", title: "Headers" },
  { id: "usage", title: "Usage" },
  { id: "usage-history", title: "Usage history" },
  { id: "errors", title: "Errors" },
] as const;

export default function DocsPage() {
  const { appUrl } = useLoaderData<typeof loader>();
  const sheetUrl = `${appUrl}${SHEET_API_PATH}/<sheet-id>`;
  const key = `$${KEY_VARIABLE}`;
  return (
    <div className="space-y-8">
      <PageHeader
        title="API documentation"
        description={
          <>
            Every sheet you upload is served as JSON from its own endpoint. Calls are authenticated with an API key and
            counted against your account's monthly quota. Your{" "}
            <Link to="/sheets" className="font-medium text-indigo-700 underline">
              Sheets
            </Link>{" "}
            page has examples built from each sheet's own columns.
          </>
        }
      />

      <nav aria-label="On this page" className="rounded-lg border border-slate-200 bg-white p-4 text-sm shadow-sm">
        <p className="font-semibold text-slate-800">On this page</p>
        <ul className="mt-2 flex flex-wrap gap-x-4 gap-y-1">
          {SECTIONS.map((section) => (
            <li key={section.id}>
              <a href={`#${section.id}`} className="text-indigo-700 underline underline-offset-2">
                {section.title}
              </a>
            </li>
          ))}
        </ul>
      </nav>

      <Section id="authentication" title="Authentication">
        <p>
          Send a key in the <C>Authorization</C> header. Keys are <C>sm_live_</C> followed by 43 characters; create them
          on the{" "}
          <Link to="/keys" className="font-medium text-indigo-700 underline">
            API keys
          </Link>{" "}
          page, where each is shown once. The examples here read the key from the <C>{KEY_VARIABLE}</C> environment
          variable.
        </p>
        <Block>Authorization: Bearer sm_live_…</Block>
        <p>
          A missing, malformed, unknown or revoked key gets <strong>401</strong>. A revoked key stops working within a
          second.
        </p>
      </Section>

      <Section id="sheets" title={`Read a sheet: GET ${SHEET_API_PATH}/:sheetId`}>
        <Block>{curlCommand(`${sheetUrl}?city=Paris&sort=population&order=desc&limit=10`, key)}</Block>
        <Block>
          {JSON.stringify(
            {
              data: [{ city: "Paris", population: 2100000, capital: true }],
              meta: { total: 1, limit: 10, offset: 0, version: 3, updatedAt: "2026-11-30T08:12:41.508Z" },
            },
            null,
            2,
          )}
        </Block>
        <p>
          Rows come back in file order (unless sorted), with their keys in the sheet's column order. Values are typed at
          import: numbers are numbers, <C>true</C>/<C>false</C> (any case) are booleans, empty cells are <C>null</C>,
          everything else is a string. Values that would lose information as numbers stay strings: leading zeros (
          <C>007</C>, zip codes), a leading <C>+</C>, decimal commas (<C>3,50</C>), and integers too long for a double.{" "}
          <C>meta.total</C> counts the rows matching the filters and search, whatever the page. <C>meta.version</C> is
          the sheet's data version (1 after the upload, one more after each replacement) and <C>meta.updatedAt</C> when
          the data last changed: every row of one answer comes from the version in its meta, so a client reading several
          pages can check they belong together. The id and endpoint never change.
        </p>
        <p>
          A sheet that does not exist or belongs to another account gets <strong>404</strong> (the two are
          indistinguishable). Anything but GET gets <strong>405</strong>.
        </p>
      </Section>

      <Section id="parameters" title="Parameters">
        <Table
          label="Query parameters"
          columns={["Parameter", "Meaning"]}
          rows={[
            [<C key="p">limit</C>, "Rows per page, a whole number from 1 to 1000. Default 100."],
            [<C key="p">offset</C>, "Rows to skip, a whole number ≥ 0. Default 0. Page n of size s is offset=(n−1)×s."],
            [
              <C key="p">sort</C>,
              "A column name to sort by. Numbers sort as numbers, text by the database collation, empty cells last in both directions; ties keep file order. In a column that mixes types, text sorts before numbers before booleans.",
            ],
            [<C key="p">order</C>, "asc (default) or desc; needs sort."],
            [
              <C key="p">search</C>,
              "Case-insensitive substring over every value of a row (1–200 characters). % and _ are literal.",
            ],
            [
              <C key="p">fields</C>,
              "Comma-separated column names: fields=a,b returns only those columns, in that order. An unknown or repeated name gets 400.",
            ],
            [
              <C key="p">{"<column>=<value>"}</C>,
              'Exact match on a column, as written in the header. Several filters are ANDed. The value matches the typed cell: score=9.50 finds the number 9.5, active=TRUE the boolean true, zip=01234 the string "01234"; an empty value (notes=) finds empty cells. Case-sensitive.',
            ],
          ]}
        />
        <p>
          Every parameter is checked before anything runs, and before the quota is touched: a bad one gets{" "}
          <strong>400</strong> naming it, and costs nothing. That covers a non-numeric, negative, fractional or
          out-of-range <C>limit</C>/<C>offset</C>, an unknown <C>sort</C> column, an <C>order</C> other than <C>asc</C>/
          <C>desc</C>, an empty or too long <C>search</C>, an unknown column in <C>fields</C>, any parameter given
          twice, and any other name that is not a column of the sheet. A column named <C>limit</C>, <C>offset</C>,{" "}
          <C>sort</C>, <C>order</C>, <C>search</C> or <C>fields</C> cannot be filtered on.
        </p>
        <Block>{curlCommand(`${sheetUrl}?fields=city,population&limit=2&offset=2`, key)}</Block>
      </Section>

      <Section id="conditional-requests" title="Conditional requests: ETag and 304">
        <p>
          Every page carries a strong <C>ETag</C>. Send it back in <C>If-None-Match</C> and, if the page is unchanged,
          the answer is <strong>304 Not Modified</strong> with no body (and the same <C>ETag</C> and quota headers). The
          tag depends on the sheet's rows and the query, not on the key.
        </p>
        <p>
          <strong>A 304 counts against the quota</strong>, like a 200: the key and the quota are checked exactly as for
          a 200, and over quota the answer is 429, not 304. What a 304 saves is the transfer, not the call. Pages are
          sent with <C>Cache-Control: private, no-cache</C> and <C>Vary: Authorization</C>; errors are{" "}
          <C>private, no-store</C>.
        </p>
      </Section>

      <Section id="quota" title="The quota">
        <p>
          The quota is per account and per calendar month in UTC; it resets at <strong>00:00 UTC on the 1st</strong> of
          each month.
        </p>
        <ul className="list-disc space-y-1 pl-5">
          <li>
            <strong>What counts:</strong> a call to <C>{SHEET_API_PATH}/:sheetId</C> that returns 200 or 304, once.
          </li>
          <li>
            <strong>What does not:</strong> key (401), sheet (404) and parameter (400) errors, refused calls (429),
            calls answered 503, and every call to <C>{USAGE_API_PATH}</C> and <C>{USAGE_API_PATH}/history</C>. A call
            whose rows could not be read after it was counted is given back.
          </li>
          <li>
            <strong>Over quota:</strong> <strong>429</strong> with <C>Retry-After</C> (seconds until the reset) and a
            problem body of type <C>…#quota-exceeded</C>.
          </li>
          <li>
            <strong>Exact under load:</strong> the check and the count are one atomic step, so concurrent calls are
            never admitted past the limit.
          </li>
          <li>
            <strong>When our stores are down</strong> the API fails closed: <strong>503</strong> with{" "}
            <C>Retry-After: 5</C>, naming the store (<C>quota-store-unavailable</C> or <C>database-unavailable</C>).
            Nothing is served unmetered and nothing is counted.
          </li>
        </ul>
      </Section>

      <Section id="headers" title="Headers">
        <p>Every metered response (200, 304 and 429) carries the quota, following the IETF RateLimit header drafts:</p>
        <Block>
          {[
            "RateLimit-Limit: 1000",
            "RateLimit-Remaining: 588",
            "RateLimit-Reset: 1209600                      # seconds until the month resets",
            'RateLimit-Policy: "monthly";q=1000;w=2592000   # w = seconds in this month',
            'RateLimit: "monthly";r=588;t=1209600',
          ].join("\n")}
        </Block>
        <Table
          label="Other headers"
          columns={["Header", "When"]}
          rows={[
            [<C key="h">ETag</C>, "On every page; send it back in If-None-Match to get 304 when unchanged."],
            [<C key="h">Retry-After</C>, "On 429 (seconds until the monthly reset) and 503 (seconds to wait)."],
            [<C key="h">Allow: GET</C>, "On 405."],
          ]}
        />
      </Section>

      <Section id="usage" title={`This month's usage: GET ${USAGE_API_PATH}`}>
        <Block>{curlCommand(`${appUrl}${USAGE_API_PATH}`, key)}</Block>
        <Block>
          {JSON.stringify(
            {
              used: 412,
              limit: 1000,
              remaining: 588,
              period: "2026-11",
              resetsAt: "2026-12-01T00:00:00.000Z",
              keys: [{ id: "cmx2…", name: "Web shop", prefix: "sm_live_FTX7ab", used: 310 }],
            },
            null,
            2,
          )}
        </Block>
        <p>
          The key's account: calls used this month, the limit, what is left, the month and when it resets. It counts
          nothing. <C>keys</C> breaks the month down by API key (every active key, and revoked keys that made calls this
          month).
        </p>
      </Section>

      <Section id="usage-history" title={`Usage history: GET ${USAGE_API_PATH}/history`}>
        <Block>
          {curlCommand(`${appUrl}${USAGE_API_PATH}/history?from=2026-10-31&to=2026-11-03&granularity=day`, key)}
        </Block>
        <Block>
          {JSON.stringify(
            {
              data: [
                { period: "2026-10", day: "2026-10-31", used: 52, calls: 52 },
                { period: "2026-11", day: "2026-11-01", used: 15, calls: 15 },
              ],
              meta: { from: "2026-10-31T00:00:00.000Z", to: "2026-11-03T00:00:00.000Z", granularity: "day" },
            },
            null,
            2,
          )}
        </Block>
        <p>
          Usage per hour or per day from the hourly snapshots (so up to the last sync; the live count is{" "}
          <C>{USAGE_API_PATH}</C>). It counts nothing.
        </p>
        <Table
          label="History parameters"
          columns={["Parameter", "Meaning"]}
          rows={[
            [
              <C key="p">from</C>,
              "Start, inclusive: an ISO date (midnight UTC) or date and time (UTC without an offset). Default: the start of the month that to falls in.",
            ],
            [<C key="p">to</C>, "End, exclusive, in the same forms. Default: the end of the current UTC month."],
            [<C key="p">granularity</C>, "hour (default) or day (UTC days)."],
            [<C key="p">format</C>, "json (default) or csv (an attachment, RFC 4180)."],
          ]}
        />
        <p>
          A range may span at most 92 days by the hour and 400 days by the day. <C>used</C> is the month's running total
          at the end of the bucket, <C>calls</C> what it grew by in the bucket. A bad or repeated parameter, or any
          other one, gets <strong>400</strong> naming it.
        </p>
      </Section>

      <Section id="errors" title="Errors">
        <p>
          Errors are <C>application/problem+json</C> (RFC 9457), with a <C>detail</C> that says what to change:
        </p>
        <Block>
          {JSON.stringify(
            {
              type: "https://sheetmeter.dev/problems#invalid-parameter",
              title: "Invalid query parameter",
              status: 400,
              detail: "“limit” must be a whole number from 1 to 1000, got “5000”.",
              parameter: "limit",
            },
            null,
            2,
          )}
        </Block>
        <Table
          label="Error statuses"
          columns={["Status", "type fragment", "When", "Counts?"]}
          rows={[
            ["400", <C key="t">invalid-parameter</C>, "A query parameter is invalid; parameter names it.", "No"],
            ["401", <C key="t">invalid-api-key</C>, "Missing, malformed, unknown or revoked key.", "No"],
            ["404", <C key="t">sheet-not-found</C>, "No such sheet for this key's account.", "No"],
            ["405", <C key="t">method-not-allowed</C>, "Anything but GET; see Allow.", "No"],
            ["429", <C key="t">quota-exceeded</C>, "Monthly quota used up; see Retry-After.", "No"],
            [
              "429",
              <C key="t">export-rate-limited</C>,
              "History exports past 30 a minute for this key; see Retry-After.",
              "No",
            ],
            [
              "503",
              <C key="t">quota-store-unavailable</C>,
              "The quota store is unreachable; retry after Retry-After.",
              "No",
            ],
            [
              "503",
              <C key="t">database-unavailable</C>,
              "The database is unreachable or slow; retry after Retry-After.",
              "No",
            ],
          ]}
        />
      </Section>
    </div>
  );
}

function Section({ id, title, children }: { id: string; title: string; children: ReactNode }) {
  return (
    <section
      id={id}
      aria-labelledby={`${id}-heading`}
      className="scroll-mt-4 space-y-3 rounded-lg border border-slate-200 bg-white p-4 text-sm text-slate-800 shadow-sm sm:p-6"
    >
      <h2 id={`${id}-heading`} className="break-words text-lg font-semibold text-slate-900">
        {title}
      </h2>
      {children}
    </section>
  );
}

/** Inline code. */
function C({ children }: { children: ReactNode }) {
  return <code className="break-words rounded bg-slate-100 px-1 text-xs text-slate-900">{children}</code>;
}

/** A command or a response: wrapped, never wider than a phone. */
function Block({ children }: { children: string }) {
  return (
    <pre className="whitespace-pre-wrap break-all rounded bg-slate-900 px-3 py-2 text-xs text-slate-50">
      <code>{children}</code>
    </pre>
  );
}

function Table({ label, columns, rows }: { label: string; columns: string[]; rows: ReactNode[][] }) {
  return (
    <HorizontalScroll label={label} className="rounded border border-slate-200">
      <table className="min-w-full divide-y divide-slate-200 text-left text-sm">
        <caption className="sr-only">{label}</caption>
        <thead className="bg-slate-50">
          <tr>
            {columns.map((column) => (
              <th key={column} scope="col" className="whitespace-nowrap px-3 py-2 font-semibold text-slate-800">
                {column}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100 bg-white align-top">
          {rows.map((row, i) => (
            <tr key={i}>
              {row.map((cell, j) => (
                <td key={j} className={`px-3 py-2 text-slate-700 ${j === 0 ? "whitespace-nowrap" : "min-w-[12rem]"}`}>
                  {cell}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </HorizontalScroll>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
