import { Redis as IORedis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { loader as usageLoader } from "~/routes/api.v1.usage";
import { getDb } from "~/utils/db.server";
import { periodOf, quotaKey } from "~/utils/period";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";
import { TEST_REDIS_URL } from "./setup/test-env";

/**
 * Remix runs a route's loader for HEAD, and for OPTIONS too, so the API's loaders saw both as a GET: metered, and
 * OPTIONS answered with the rows. The docs promise 405 for anything but GET. (e2e/sheets-api.spec.ts sends the same
 * requests to the built app over the wire.)
 */
const db = getDb();
const raw = new IORedis(TEST_REDIS_URL, { db: Number(process.env.TEST_REDIS_DB) });
afterAll(() => raw.disconnect());

let userId: string;
let key: string;
let sheetId: string;
beforeAll(async () => {
  ({ id: userId } = await createTestUser(db));
  ({ key } = await createTestApiKey(db, userId, "methods"));
  ({ sheetId } = await createTestSheet(db, userId, { name: "methods", csv: "a,b\n1,2\n" }));
});

const counted = async () => Number((await raw.get(quotaKey(userId, periodOf(new Date())))) ?? 0);

function call(method: string, path: string) {
  return new Request(`http://localhost${path}`, { method, headers: { Authorization: `Bearer ${key}` } });
}

describe.each(["HEAD", "OPTIONS"])("%s on the API", (method) => {
  it("answers 405 problem+json with Allow: GET on a sheet, and the counter does not move", async () => {
    const before = await counted();
    const response = await sheetLoader({
      request: call(method, `/api/v1/sheets/${sheetId}`),
      params: { sheetId },
      context: {},
    });
    expect(response.status).toBe(405);
    expect(response.headers.get("Allow")).toBe("GET");
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(await response.json()).not.toHaveProperty("data");
    expect(await counted()).toBe(before);
  });

  it("answers 405 with Allow: GET on usage", async () => {
    const response = await usageLoader({ request: call(method, "/api/v1/usage"), params: {}, context: {} });
    expect(response.status).toBe(405);
    expect(response.headers.get("Allow")).toBe("GET");
  });
});

it("a GET is still metered (the counter above would move)", async () => {
  const before = await counted();
  const response = await sheetLoader({
    request: call("GET", `/api/v1/sheets/${sheetId}`),
    params: { sheetId },
    context: {},
  });
  expect(response.status).toBe(200);
  expect(await counted()).toBe(before + 1);
});
