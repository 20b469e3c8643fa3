import type { HeadersFunction, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { withDeadline } from "~/utils/deadline.server";
import { data } from "@remix-run/node";
import { useLoaderData } from "@remix-run/react";
import { requireUser } from "~/auth/session-user.server";
import { liveUsageFrom } from "~/dashboard/live-usage.server";
import { PageHeader } from "~/components/app-shell";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { FirstCallGuide } from "~/components/dashboard/first-call-guide";
import { formatCount, formatMonth } from "~/utils/format";
import { LastSync } from "~/components/dashboard/last-sync";
import { LiveCounter } from "~/components/dashboard/live-counter";
import { QuotaBanner } from "~/components/dashboard/quota-banner";
import { SheetSummary } from "~/components/dashboard/sheet-summary";
import type { Part } from "~/components/dashboard/types";
import { UsageChart } from "~/components/dashboard/usage-chart";
import { useLiveUsage } from "~/components/dashboard/use-live-usage";
import { KeyUsageTable } from "~/components/dashboard/key-usage-table";
import { listKeyUsage } from "~/models/key-usage.server";
import { getUsage } from "~/models/quota.server";
import { getLastSyncRun } from "~/models/sync-runs.server";
import { listNewestSheets } from "~/models/sheets.server";
import { getOutcomeHistory } from "~/models/request-outcomes.server";
import { getChartHistory, rangeStart } from "~/models/usage-history.server";
import { databaseUnavailablePage } from "~/utils/database-outage.server";
import { type Db, getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { HOUR_MS, hourBucket, periodOf } from "~/utils/period";
import { getRedis } from "~/utils/redis.server";
import { getUserId } from "~/utils/session.server";
import { parseRange, parseView, type UsageRange, type UsageView } from "~/utils/usage-ranges";

export const meta: MetaFunction = () => [{ title: "Dashboard · Sheetmeter" }];

// Without this export the loader's Cache-Control would reach only data requests, not the HTML document.
export const headers: HeadersFunction = ({ loaderHeaders }) => loaderHeaders;

// A part that has not answered by then is shown as unavailable: a hung Redis or a slow query must not hold the
// whole page, whose other parts are ready in milliseconds.
export const PART_TIMEOUT_MS = 2000;

// `work` is started inside the race, so a synchronous throw (a client that cannot be built) settles as a rejection.
const withTimeout = <T,>(work: () => Promise<T>, name: string): Promise<T> =>
  withDeadline(work, PART_TIMEOUT_MS, `${name} took longer than ${PART_TIMEOUT_MS} ms`);

function part<T, U>(result: PromiseSettledResult<T>, name: string, shape: (value: T) => U): Part<U> {
  if (result.status === "fulfilled") return { ok: true, data: shape(result.value) };
  console.error(`dashboard: ${name} failed:`, result.reason);
  return { ok: false };
}

/** The dashboard lists a handful of sheets; the full list lives on /sheets. */
const DASHBOARD_SHEETS = 6;

/** The parts read from Postgres; settles, never rejects, so it can start before access is decided. */
function loadPersistedParts(
  db: Db,
  userId: string,
  range: UsageRange,
  view: UsageView,
  now: Date,
  keyId: string | null,
) {
  return Promise.allSettled([
    withTimeout(() => getChartHistory(db, userId, range, view, now, keyId), "usage history"),
    withTimeout(() => getLastSyncRun(db), "last sync"),
    withTimeout(() => listNewestSheets(db, userId, DASHBOARD_SHEETS), "sheet summary"),
  ]);
}

export async function loader({ request }: LoaderFunctionArgs) {
  const params = new URL(request.url).searchParams;
  const range = parseRange(params.get("range"));
  const view = parseView(params.get("view"));
  // The chart's key: its snapshots are read by key and user together, so another customer's key id shows nothing.
  const keyId = parseKeyId(params.get("key"));
  const now = new Date();
  const db = getDb();

  // The session row names the user, so the Postgres parts start alongside the user lookup instead of after it:
  // one round trip less on every load. requireUser still decides who gets the page, and reports a failed lookup
  // (it sees the same per-request result), so a failure here only skips the head start.
  const sessionUserId = await getUserId(request).catch(() => undefined);
  const persisted = sessionUserId ? loadPersistedParts(db, sessionUserId, range, view, now, keyId) : undefined;
  const user = await requireUser(request).catch((error: unknown) => {
    if (error instanceof Response) throw error;
    // Without Postgres there is no account to show (not even the limit); say so instead of a bare 500.
    console.error("dashboard: user lookup failed:", error);
    throw databaseUnavailablePage(
      "The dashboard cannot load right now because our database is not answering. Until it is back, calls to your sheets get 503 and are not counted; nothing is lost. Please try again in a minute.",
    );
  });
  const owner = { userId: user.id, monthlyLimit: user.monthlyLimit };

  // Live count (Redis) and history (Postgres) are independent; each part that fails is replaced by a message.
  const [[usage, byKey, outcomes], [history, lastSync, sheets]] = await Promise.all([
    Promise.allSettled([
      withTimeout(() => getUsage(getRedis(), db, owner, now), "live usage"),
      // Live from Redis; the last sync's counts when Redis does not answer (listKeyUsage falls back by itself).
      withTimeout(() => listKeyUsage({ redis: getRedis(), db }, user.id, now), "usage by key"),
      // Refused calls for the chart (docs/outcomes.md): tallied per account, so not shown for one key. A day before
      // the range too, so a per-day bar view's first, widened day is whole.
      keyId
        ? Promise.resolve([])
        : withTimeout(
            () =>
              getOutcomeHistory(
                { redis: getRedis(), db },
                user.id,
                new Date(rangeStart(range, now).getTime() - 24 * HOUR_MS),
                new Date(hourBucket(now).getTime() + HOUR_MS),
              ),
            "call outcomes",
          ),
    ]),
    persisted ?? loadPersistedParts(db, user.id, range, view, now, keyId),
  ]);

  return data(
    {
      user: { email: user.email, monthlyLimit: user.monthlyLimit },
      range,
      view,
      keyId,
      now: now.toISOString(),
      period: periodOf(now),
      appUrl: getEnv().APP_URL,
      usage: part(usage, "live usage", (value) => liveUsageFrom(value, now)),
      history: part(history, "usage history", (value) => ({
        from: value.from.toISOString(),
        hasAnyHistory: value.hasAnyHistory,
        points: value.points.map((p) => ({
          hour: p.hour.toISOString(),
          used: p.used,
          period: p.period,
          limit: p.limit ?? null,
        })),
        bars: value.bars && {
          from: value.bars.range.from.toISOString(),
          to: value.bars.range.to.toISOString(),
          granularity: value.bars.range.granularity,
          buckets: value.bars.buckets.map((b) => ({
            start: b.start.toISOString(),
            period: b.period,
            used: b.used,
            calls: b.calls,
          })),
        },
      })),
      byKey: part(byKey, "usage by key", (report) => ({
        source: report.source,
        keys: report.keys.map((key) => ({
          id: key.id,
          name: key.name,
          prefix: key.prefix,
          revoked: key.revokedAt !== null,
          used: key.used,
        })),
      })),
      outcomes: part(outcomes, "call outcomes", (hours) =>
        hours.map(({ hour, counts }) => ({ hour: new Date(hour).toISOString(), counts: { ...counts } })),
      ),
      lastSync: part(lastSync, "last sync", (run) =>
        run
          ? {
              status: run.status,
              startedAt: run.startedAt.toISOString(),
              finishedAt: run.finishedAt?.toISOString() ?? null,
            }
          : null,
      ),
      sheets: part(sheets, "sheet summary", ({ sheets: list, hasMore }) => ({
        hasMore,
        sheets: list.map((s) => ({
          id: s.id,
          name: s.name,
          rowCount: s.rowCount,
          dataUpdatedAt: s.dataUpdatedAt.toISOString(),
        })),
      })),
    },
    // Per-user, changing by the second: never cached by a browser or a proxy.
    { headers: { "Cache-Control": "private, no-store" } },
  );
}

function parseKeyId(value: string | null): string | null {
  return value && /^[A-Za-z0-9_-]{1,64}$/.test(value) ? value : null;
}

export default function Dashboard() {
  const data = useLoaderData<typeof loader>();
  const live = useLiveUsage(data.usage.ok ? data.usage.data : null);
  const limit = live.usage?.limit ?? data.user.monthlyLimit;
  const sheets = data.sheets.ok ? data.sheets.data.sheets : [];
  // A customer with no calls at all when the page loaded gets the way to make one, not an empty chart. The guide
  // stays once the first call arrives (the polling counter sees it) to say so, and the chart joins it below.
  const startedWithoutCalls =
    data.history.ok && !data.history.data.hasAnyHistory && data.usage.ok && data.usage.data.used === 0;
  const firstCallReceived = (live.usage?.used ?? 0) > 0;
  const keys = data.byKey.ok ? data.byKey.data.keys : null;
  const selectedKey = data.keyId ? (keys?.find((key) => key.id === data.keyId) ?? null) : null;
  // A key's line ends at its count when the page loaded: the live polling follows the account's counter only.
  const chartLive =
    data.keyId === null
      ? live.usage
      : selectedKey && data.usage.ok
        ? { ...data.usage.data, used: selectedKey.used }
        : null;

  return (
    <div>
      <PageHeader
        title="Dashboard"
        description={`Usage for ${formatMonth(live.usage?.period ?? data.period)} (UTC). Your plan allows ${formatCount(limit)} API calls a month.`}
      />
      <div className="space-y-4 sm:space-y-5">
        <QuotaBanner usage={live.usage} />
        <div className="grid gap-4 sm:gap-5 md:grid-cols-3">
          <div className="md:col-span-2">
            <LiveCounter usage={live.usage} status={live.status} />
          </div>
          <LastSync run={data.lastSync} serverNow={data.now} />
        </div>
        {startedWithoutCalls ? (
          <FirstCallGuide
            appUrl={data.appUrl}
            progress={{
              firstSheet: sheets[0] ?? null,
              hasKey: keys?.some((key) => !key.revoked) ?? false,
              firstCallReceived,
            }}
          />
        ) : null}
        {startedWithoutCalls && !firstCallReceived ? null : (
          <UsageChart
            range={data.range}
            view={data.view}
            keys={keys}
            keyId={data.keyId}
            history={data.history}
            live={chartLive}
            limit={limit}
            serverNow={data.now}
            outcomes={data.outcomes.ok ? data.outcomes.data : []}
          />
        )}
        <KeyUsageTable byKey={data.byKey} range={data.range} view={data.view} selectedKeyId={data.keyId} />
        <SheetSummary sheets={data.sheets} appUrl={data.appUrl} />
      </div>
    </div>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
