import { beforeAll, describe, expect, it } from "vitest";
import { clearHotCaches } from "~/api/hot-cache.server";
import { parseSheetQuery } from "~/api/sheet-query.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { getDb } from "~/utils/db.server";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";

/** `?fields=`: only the named columns, in the order asked, with filters, sort, search and the page cache. */
const db = getDb();

const CSV = ["id,name,city,score", "1,Alice,Paris,10", "2,Bob,Berlin,9.5", "3,Chloé,Paris,100", "4,Dan,Oslo,"].join(
  "\n",
);

let key: string;
let sheetId: string;

beforeAll(async () => {
  clearHotCaches();
  const user = await createTestUser(db);
  ({ key } = await createTestApiKey(db, user.id));
  ({ sheetId } = await createTestSheet(db, user.id, { name: "people", csv: CSV }));
});

async function get(query: string) {
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}${query}`, {
    headers: { Authorization: `Bearer ${key}` },
  });
  const response = await sheetLoader({ request, params: { sheetId }, context: {} });
  const text = await response.text();
  return { response, body: JSON.parse(text), text };
}

describe("GET /api/v1/sheets/:sheetId?fields=", () => {
  it("answers only the named columns, in the order asked", async () => {
    const { response, body, text } = await get("?fields=city,id");
    expect(response.status).toBe(200);
    expect(body.data[0]).toEqual({ city: "Paris", id: 1 });
    // Key order in the bytes is the order asked, not the file's.
    expect(text).toContain('{"city":"Paris","id":1}');
    expect(body.meta).toMatchObject({ total: 4, version: 1 });
  });

  it("works with filters, sort and search on columns it leaves out", async () => {
    const filtered = await get("?fields=name&city=Paris&sort=score&order=desc");
    expect(filtered.body.data).toEqual([{ name: "Chloé" }, { name: "Alice" }]);
    expect(filtered.body.meta.total).toBe(2);
    const searched = await get("?search=berlin&fields=score,name");
    expect(searched.body.data).toEqual([{ score: 9.5, name: "Bob" }]);
    const paged = await get("?fields=id&limit=2&offset=1&sort=id");
    expect(paged.body.data).toEqual([{ id: 2 }, { id: 3 }]);
  });

  it("keeps pages and ETags of different field lists apart, and of the same list together", async () => {
    const ab = await get("?fields=id,name&limit=1");
    const ba = await get("?fields=name,id&limit=1");
    const all = await get("?limit=1");
    expect(ab.text).not.toBe(ba.text);
    expect(new Set([ab, ba, all].map(({ response }) => response.headers.get("ETag"))).size).toBe(3);
    const again = await get("?limit=1&fields=id,name");
    expect(again.text).toBe(ab.text);
    expect(again.response.headers.get("ETag")).toBe(ab.response.headers.get("ETag"));
  });

  it("answers 400 problem+json naming every unknown field", async () => {
    const { response, body } = await get("?fields=id,nope,alsoNope");
    expect(response.status).toBe(400);
    expect(response.headers.get("Content-Type")).toBe("application/problem+json");
    expect(body).toMatchObject({ parameter: "fields", status: 400 });
    expect(body.detail).toContain("“nope”, “alsoNope”");
    expect(body.detail).toContain("Columns: “id”, “name”, “city”, “score”.");
  });

  it.each([
    ["?fields=", "none empty"],
    ["?fields=id,,name", "none empty"],
    ["?fields=id,id", "more than once"],
    ["?fields=id&fields=name", "more than once"],
  ])("answers %s with 400", async (query, message) => {
    const { response, body } = await get(query);
    expect(response.status).toBe(400);
    expect(body.parameter).toBe("fields");
    expect(body.detail).toContain(message);
  });
});

describe("parseSheetQuery fields", () => {
  const columns = ["id", "first name", "city"];
  it("trims names around commas and keeps a name with a space", () => {
    const parsed = parseSheetQuery(new URLSearchParams("fields= city , first name"), columns);
    expect(parsed).toMatchObject({ ok: true, query: { fields: ["city", "first name"] } });
  });
  it("leaves fields out when not asked", () => {
    const parsed = parseSheetQuery(new URLSearchParams("limit=5"), columns);
    expect(parsed.ok && parsed.query.fields).toBeUndefined();
  });
});
