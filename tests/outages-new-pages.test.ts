import net from "node:net";
import { Redis } from "@upstash/redis";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { loader as logsLoader } from "~/routes/logs";
import { action as settingsAction } from "~/routes/settings";
import { action as sheetsAction } from "~/routes/sheets";
import { createPrismaClient, type Db, getDb, setDbForTests } from "~/utils/db.server";
import { setRedisForTests } from "~/utils/redis.server";
import { createUserSession } from "~/utils/session.server";
import { createTestUser, uniqueTestEmail } from "./factories";
import { cookieFrom, formRequest, getRequest, settle, TEST_ORIGIN } from "./helpers/requests";

/**
 * The pages this session added, with Redis or Postgres down (a port nothing listens on): each answers as designed —
 * the request log's notice, a 503 form error that changes nothing, or the designed 503 page — never a 500.
 */
const db = getDb();
const args = (request: Request) => ({ request, params: {}, context: {} });
let user: { id: string; email: string };
let cookie: string;

beforeAll(async () => {
  user = await createTestUser(db);
  cookie = cookieFrom(await createUserSession(new Request(`${TEST_ORIGIN}/login`), user.id, "/logs", { db }));
});

afterEach(() => {
  setRedisForTests(undefined);
  setDbForTests(undefined);
  vi.restoreAllMocks();
});

async function deadPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function redisDown() {
  vi.spyOn(console, "error").mockImplementation(() => {});
  setRedisForTests(new Redis({ url: `http://127.0.0.1:${await deadPort()}`, token: "unused", retry: { retries: 0 } }));
}

async function postgresDown(): Promise<Db> {
  vi.spyOn(console, "error").mockImplementation(() => {});
  const down = createPrismaClient(`postgresql://postgres@127.0.0.1:${await deadPort()}/nowhere`);
  setDbForTests(down);
  return down;
}

describe("/logs", () => {
  it("says the request log cannot be read while Redis is down, and still lists the keys", async () => {
    await redisDown();
    const response = await settle(logsLoader(args(getRequest("/logs", { Cookie: cookie }))));
    expect(response.status).toBe(200);
    const page = await response.json();
    expect(page.requests).toBeNull();
    expect(page.keys).toEqual([]);
  });

  it("answers the designed 503 page while Postgres is down", async () => {
    const down = await postgresDown();
    try {
      const response = await settle(logsLoader(args(getRequest("/logs", { Cookie: cookie }))));
      expect(response.status).toBe(503);
      expect(response.headers.get("Retry-After")).toBe("30");
      expect(await response.text()).toMatch(/database is not answering/);
    } finally {
      await down.$disconnect();
    }
  });
});

describe("the /sheets URL forms while Redis is down", () => {
  it("refuses 'Create from URL' and 'Refresh now' with a 503 form error and creates nothing", async () => {
    await redisDown();
    const before = await db.sheet.count({ where: { userId: user.id } });
    const create = await settle(
      sheetsAction(
        args(
          formRequest(
            "/sheets",
            { intent: "create-from-url", url: "https://example.com/a.csv", schedule: "manual" },
            cookie,
          ),
        ),
      ),
    );
    expect(create.status).toBe(503);
    expect(create.headers.get("Retry-After")).toBe("60");
    expect((await create.json()).urlError).toMatch(/can't fetch sheets right now/);
    const refresh = await settle(
      sheetsAction(args(formRequest("/sheets", { intent: "refresh", sheetId: "any" }, cookie))),
    );
    expect(refresh.status).toBe(503);
    expect((await refresh.json()).sheetError.message).toMatch(/can't fetch sheets right now/);
    expect(await db.sheet.count({ where: { userId: user.id } })).toBe(before);
  });
});

describe("the account forms on /settings while Redis is down", () => {
  it("refuses an email change and a deletion with a 503 form error, and changes nothing", async () => {
    await redisDown();
    const change = await settle(
      settingsAction(
        args(
          formRequest(
            "/settings",
            { intent: "change-email", email: uniqueTestEmail("outage"), password: "whatever it is" },
            cookie,
          ),
        ),
      ),
    );
    expect(change.status).toBe(503);
    expect(change.headers.get("Retry-After")).toBe("60");
    expect((await change.json()).errors.form).toMatch(/can't check your password right now/);

    const remove = await settle(
      settingsAction(
        args(
          formRequest(
            "/settings",
            { intent: "delete-account", confirmEmail: user.email, password: "whatever it is" },
            cookie,
          ),
        ),
      ),
    );
    expect(remove.status).toBe(503);
    expect(await db.user.findUnique({ where: { id: user.id }, select: { email: true } })).toEqual({
      email: user.email,
    });
  });
});
