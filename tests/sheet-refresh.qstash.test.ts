import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@upstash/qstash";
import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startQstash } from "../dev/qstash";
import { refreshCron, SCHEDULE_DEADLINE_MS, sheetRefreshScheduleId } from "~/models/sheet-schedules.server";
import {
  appSheetSourceDeps,
  createSheetFromUrl,
  deleteSheetWithSource,
  getSheetSource,
  removeSheetSchedules,
  ScheduleUnavailableError,
  setRefreshSchedule,
} from "~/models/sheet-sources.server";
import { deleteAccount } from "~/models/account-deletion.server";
import { replaceSheetData } from "~/models/sheet-data.server";
import { getSheetForQuery, previewSheetRows } from "~/models/sheets.server";
import * as route from "~/routes/api.cron.refresh-sheet";
import { createPrismaClient, getDb, setBulkDbForTests } from "~/utils/db.server";
import { loadRawEnv } from "~/utils/env.server";
import { getQstash } from "~/utils/qstash.server";
import { getRedis } from "~/utils/redis.server";
import { createTestUser } from "./factories";
import { signQstash } from "./helpers/qstash-sign";
import { serveRoute } from "./helpers/serve-action";
import { csvHandler, startSourceServer } from "./helpers/source-server";

/**
 * URL sheets as they run in production: the real @upstash/qstash Client creates each sheet's schedule in the QStash
 * stand-in, the stand-in fires it as a signed POST to the real refresh route served over HTTP, and the route fetches
 * the source from a local HTTP server (loopback allowed through SHEET_FETCH_ALLOW_LOOPBACK, as in `npm run dev`).
 */
const served = await serveRoute(route);
const raw = loadRawEnv();
const qstash = await startQstash({
  token: raw.QSTASH_TOKEN!,
  currentSigningKey: raw.QSTASH_CURRENT_SIGNING_KEY!,
  nextSigningKey: raw.QSTASH_NEXT_SIGNING_KEY!,
  retryDelayMs: () => 50,
  maxRetryDelayMs: 50,
  log: () => {},
});
const source = await startSourceServer();
// Before anything reads the environment (validated once).
process.env.APP_URL = served.origin;
process.env.QSTASH_URL = qstash.url;
process.env.SHEET_FETCH_ALLOW_LOOPBACK = "1";
const ROUTE_URL = `${served.origin}/api/cron/refresh-sheet`;

afterAll(async () => {
  await qstash.close();
  await served.close();
  await source.close();
});

let earlierMessages = 0;
const newMessages = () => qstash.messages().slice(earlierMessages);
beforeEach(() => {
  earlierMessages = qstash.messages().length;
  vi.spyOn(console, "info").mockImplementation(() => {});
});

/** The minute at which the sheet's hourly cron fires (QStash crons are UTC). */
function firingMinute(sheetId: string): Date {
  const minute = Number(refreshCron(sheetId, "hourly").split(" ")[0]);
  return new Date(Date.UTC(2026, 10, 29, 13, minute));
}

async function fire(sheetId: string, hour = 13) {
  const at = firingMinute(sheetId);
  at.setUTCHours(hour);
  await qstash.fireDueSchedules(at);
  await qstash.idle();
}

async function rowsOf(sheetId: string) {
  const sheet = await getSheetForQuery(getDb(), (await ownerOf(sheetId))!, sheetId);
  return { version: sheet!.version, rows: await previewSheetRows(getDb(), sheet!) };
}

async function ownerOf(sheetId: string) {
  return (await getDb().sheet.findUnique({ where: { id: sheetId }, select: { userId: true } }))?.userId;
}

async function urlSheet(path: string, schedule: "hourly" | "daily" | "manual" = "hourly") {
  const user = await createTestUser(getDb());
  const created = await createSheetFromUrl(appSheetSourceDeps(), {
    userId: user.id,
    url: `${source.origin}${path}`,
    schedule,
  });
  return { user, ...created };
}

describe("URL sheets refreshed by their QStash schedule", () => {
  it("fetches on creation, schedules the refresh, and the signed scheduled call replaces the rows", async () => {
    source.handle("/prices.csv", csvHandler("item,price\napple,1\n", { etag: '"v1"' }));
    const { sheetId, scheduleId, user } = await urlSheet("/prices.csv");
    expect(scheduleId).toBe(sheetRefreshScheduleId(sheetId));
    expect((await rowsOf(sheetId)).rows).toEqual([{ item: "apple", price: 1 }]);
    const schedule = qstash.schedules().find((s) => s.scheduleId === scheduleId);
    expect(schedule).toMatchObject({
      destination: ROUTE_URL,
      cron: refreshCron(sheetId, "hourly"),
      body: JSON.stringify({ sheetId }),
    });

    source.handle("/prices.csv", csvHandler("item,price,stock\napple,2,5\npear,3,0\n", { etag: '"v2"' }));
    await fire(sheetId);

    const [message, ...others] = newMessages();
    expect(others).toEqual([]);
    expect(message.attempts.map((attempt) => attempt.status)).toEqual([200]);
    expect(source.requests.at(-1)?.headers["if-none-match"]).toBe('"v1"');
    const after = await rowsOf(sheetId);
    expect(after.version).toBe(2);
    expect(after.rows).toEqual([
      { item: "apple", price: 2, stock: 5 },
      { item: "pear", price: 3, stock: 0 },
    ]);
    expect(await getSheetSource(getDb(), user.id, sheetId)).toMatchObject({
      schedule: "hourly",
      lastRefreshStatus: "updated",
      lastRefreshError: null,
    });
  });

  it("skips an unchanged source: 304 to its validators, or the same body from a server without them", async () => {
    source.handle("/same.csv", csvHandler("a\n1\n", { etag: '"e1"', lastModified: "Sun, 29 Nov 2026 10:00:00 GMT" }));
    const { sheetId, user } = await urlSheet("/same.csv");
    const before = await getSheetSource(getDb(), user.id, sheetId);

    await fire(sheetId);
    const conditional = source.requests.at(-1)!.headers;
    expect(conditional).toMatchObject({
      "if-none-match": '"e1"',
      "if-modified-since": "Sun, 29 Nov 2026 10:00:00 GMT",
    });
    expect(newMessages().map((m) => m.attempts.map((a) => a.status))).toEqual([[200]]);
    expect((await rowsOf(sheetId)).version).toBe(1);
    const afterNotModified = await getSheetSource(getDb(), user.id, sheetId);
    expect(afterNotModified).toMatchObject({ lastRefreshStatus: "unchanged", lastRefreshError: null });
    expect(afterNotModified!.lastRefreshAt!.getTime()).toBeGreaterThan(before!.lastRefreshAt!.getTime());

    // Same bytes, no validators: recognised by the body's hash and not imported again.
    source.handle("/same.csv", csvHandler("a\n1\n"));
    await fire(sheetId, 14);
    expect((await rowsOf(sheetId)).version).toBe(1);
    expect(await getSheetSource(getDb(), user.id, sheetId)).toMatchObject({ lastRefreshStatus: "unchanged" });
  });

  it("keeps the old rows when the source fails, records the error and time, and does not make QStash retry", async () => {
    source.handle("/flaky.csv", csvHandler("a\n1\n2\n"));
    const { sheetId, user } = await urlSheet("/flaky.csv");

    source.handle("/flaky.csv", (_request, response) => response.writeHead(500).end("down"));
    await fire(sheetId);
    expect(newMessages().map((m) => m.attempts.map((a) => a.status))).toEqual([[200]]);
    expect(await rowsOf(sheetId)).toEqual({ version: 1, rows: [{ a: 1 }, { a: 2 }] });
    const failed = await getSheetSource(getDb(), user.id, sheetId);
    expect(failed).toMatchObject({ lastRefreshStatus: "failed", lastRefreshError: "The source answered HTTP 500." });
    expect(failed!.lastRefreshAt).toBeInstanceOf(Date);

    // A body that is not a sheet fails the same way; the rows stay.
    source.handle("/flaky.csv", csvHandler("a,a\n1,2\n"));
    await fire(sheetId, 14);
    expect((await rowsOf(sheetId)).version).toBe(1);
    expect((await getSheetSource(getDb(), user.id, sheetId))!.lastRefreshError).toMatch(/appears twice/);

    // And the next good fetch clears the error.
    source.handle("/flaky.csv", csvHandler("a\n3\n"));
    await fire(sheetId, 15);
    expect(await rowsOf(sheetId)).toEqual({ version: 2, rows: [{ a: 3 }] });
    expect(await getSheetSource(getDb(), user.id, sheetId)).toMatchObject({
      lastRefreshStatus: "updated",
      lastRefreshError: null,
    });
  });

  it("imports the source again after the rows were replaced by a file, though the source did not change", async () => {
    source.handle("/mine.csv", csvHandler("a\n1\n", { etag: '"m1"' }));
    const { sheetId, user } = await urlSheet("/mine.csv");
    await replaceSheetData(
      { redis: getRedis(), db: getDb() },
      { sheetId, userId: user.id, parsed: { columns: ["b"], rows: [{ b: 9 }] } },
    );
    await fire(sheetId);
    // Unconditional this time: the source's validators describe rows the sheet no longer holds.
    expect(source.requests.at(-1)?.headers["if-none-match"]).toBeUndefined();
    expect(await rowsOf(sheetId)).toEqual({ version: 3, rows: [{ a: 1 }] });
    // And back to conditional requests once the rows are the source's again.
    await fire(sheetId, 14);
    expect(source.requests.at(-1)?.headers["if-none-match"]).toBe('"m1"');
    expect((await rowsOf(sheetId)).version).toBe(3);
  });

  it("changes the schedule: manual removes it from QStash, daily brings it back with a daily cron", async () => {
    source.handle("/sched.csv", csvHandler("a\n1\n"));
    const { sheetId, user } = await urlSheet("/sched.csv", "manual");
    const deps = appSheetSourceDeps();
    expect(qstash.schedules().some((s) => s.scheduleId === sheetRefreshScheduleId(sheetId))).toBe(false);

    await setRefreshSchedule(deps, { userId: user.id, sheetId, schedule: "daily" });
    expect(qstash.schedules().find((s) => s.scheduleId === sheetRefreshScheduleId(sheetId))?.cron).toBe(
      refreshCron(sheetId, "daily"),
    );
    expect(await getSheetSource(getDb(), user.id, sheetId)).toMatchObject({ schedule: "daily" });

    await setRefreshSchedule(deps, { userId: user.id, sheetId, schedule: "manual" });
    expect(qstash.schedules().some((s) => s.scheduleId === sheetRefreshScheduleId(sheetId))).toBe(false);
    // Another user cannot touch it.
    const other = await createTestUser(getDb());
    expect(await setRefreshSchedule(deps, { userId: other.id, sheetId, schedule: "hourly" })).toBe(false);
  });

  it("removes the schedule with the sheet, and a call for a sheet that is gone removes its schedule", async () => {
    source.handle("/gone.csv", csvHandler("a\n1\n"));
    const deps = appSheetSourceDeps();
    const first = await urlSheet("/gone.csv");
    expect(await deleteSheetWithSource(deps, { userId: first.user.id, sheetId: first.sheetId })).toBe(true);
    expect(qstash.schedules().some((s) => s.scheduleId === first.scheduleId)).toBe(false);

    // Deleted behind the app's back (as an account's cascade would): the next firing finds no sheet.
    const second = await urlSheet("/gone.csv");
    await getDb().sheet.delete({ where: { id: second.sheetId } });
    vi.spyOn(console, "warn").mockImplementation(() => {});
    await fire(second.sheetId);
    expect(newMessages().map((m) => m.attempts.map((a) => a.status))).toEqual([[200]]);
    expect(qstash.schedules().some((s) => s.scheduleId === second.scheduleId)).toBe(false);
  });

  it("removes every schedule of an account (for account deletion)", async () => {
    source.handle("/a.csv", csvHandler("a\n1\n"));
    const { user, scheduleId } = await urlSheet("/a.csv");
    const more = await createSheetFromUrl(appSheetSourceDeps(), {
      userId: user.id,
      url: `${source.origin}/a.csv`,
      schedule: "daily",
    });
    expect(await removeSheetSchedules(appSheetSourceDeps(), user.id)).toBe(2);
    const left = qstash.schedules().map((s) => s.scheduleId);
    expect(left).not.toContain(scheduleId);
    expect(left).not.toContain(more.scheduleId);
  });

  it("names a sheet whose URL holds a stray '%' after its file, not a 503", async () => {
    source.handle("/100%off.csv", csvHandler("a\n1\n"));
    const { sheetId } = await urlSheet("/100%off.csv", "manual");
    expect(await getDb().sheet.findUniqueOrThrow({ where: { id: sheetId } })).toMatchObject({ name: "100%off" });
  });

  it("deleting the account removes its URL sheets' schedules with the rest", async () => {
    source.handle("/owned.csv", csvHandler("a\n1\n"));
    const { user, sheetId, scheduleId } = await urlSheet("/owned.csv");
    await deleteAccount({ db: getDb(), redis: getRedis(), qstash: getQstash() }, user.id);
    expect(qstash.schedules().map((s) => s.scheduleId)).not.toContain(scheduleId);
    expect(await getDb().sheet.count({ where: { id: sheetId } })).toBe(0);
    expect(await getDb().sheetSource.count({ where: { sheetId } })).toBe(0);
  });

  it("gives up on a QStash that does not answer, and changes nothing", async () => {
    source.handle("/hung.csv", csvHandler("a\n1\n"));
    const { sheetId, user } = await urlSheet("/hung.csv", "manual");
    // Accepts connections and never answers: the SDK's request alone would wait forever.
    const hung = http.createServer(() => {});
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = hung.address() as AddressInfo;
      const deps = {
        ...appSheetSourceDeps(),
        qstash: new Client({ baseUrl: `http://127.0.0.1:${port}`, token: raw.QSTASH_TOKEN!, retry: false }),
      };
      const started = Date.now();
      await expect(setRefreshSchedule(deps, { userId: user.id, sheetId, schedule: "hourly" })).rejects.toThrow(
        ScheduleUnavailableError,
      );
      expect(Date.now() - started).toBeLessThan(SCHEDULE_DEADLINE_MS + 2000);
      expect(await getSheetSource(getDb(), user.id, sheetId)).toMatchObject({ schedule: "manual" });
      await expect(deleteSheetWithSource(deps, { userId: user.id, sheetId })).rejects.toThrow(ScheduleUnavailableError);
      expect(await getDb().sheet.count({ where: { id: sheetId } })).toBe(1);
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    }
  });

  it("answers 503 with Retry-After while Postgres is down, and takes QStash's retry of the same token once it is back", async () => {
    source.handle("/down.csv", csvHandler("a\n1\n"));
    const { sheetId } = await urlSheet("/down.csv", "manual");
    const body = JSON.stringify({ sheetId });
    const signature = await signQstash({ key: raw.QSTASH_CURRENT_SIGNING_KEY!, url: ROUTE_URL, body });
    const post = () => fetch(ROUTE_URL, { method: "POST", headers: { "Upstash-Signature": signature }, body });
    const down = createPrismaClient(`postgresql://postgres@127.0.0.1:${await deadPort()}/nowhere`);
    vi.spyOn(console, "error").mockImplementation(() => {});
    setBulkDbForTests(down);
    try {
      const refused = await post();
      expect(refused.status).toBe(503);
      expect(refused.headers.get("Retry-After")).toBeTruthy();
      expect(refused.headers.get("Content-Type")).toMatch(/problem\+json/);
    } finally {
      setBulkDbForTests(undefined);
      await down.$disconnect();
    }
    // The token was released: QStash's retry is served, not taken for a replay.
    const retried = await post();
    expect(retried.status).toBe(200);
    expect(await retried.json()).toMatchObject({ status: expect.stringMatching(/updated|unchanged/) });
  });

  it("refuses an unsigned call and a body that names no sheet", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const unsigned = await fetch(ROUTE_URL, { method: "POST", body: JSON.stringify({ sheetId: "x" }) });
    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get("Content-Type")).toMatch(/problem\+json/);
    expect((await fetch(ROUTE_URL)).status).toBe(405);

    const { getQstash } = await import("~/utils/qstash.server");
    await getQstash().publishJSON({ url: ROUTE_URL, body: { nope: 1 }, retries: 0 });
    await qstash.idle();
    expect(newMessages().map((m) => m.attempts.map((a) => a.status))).toEqual([[400]]);
  });
});

/** A port nothing listens on: connections to it are refused at once, like a Postgres that is down. */
async function deadPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
