import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearHotCaches } from "~/api/hot-cache.server";
import { parseCsv } from "~/models/csv-import.server";
import { ownerVersionKey } from "~/models/owner-version.server";
import {
  formatOfFile,
  parseSheetBytes,
  parseSheetStream,
  replaceSheetData,
  worksheetOption,
} from "~/models/sheet-data.server";
import { getSheetForQuery, querySheetRows } from "~/models/sheets.server";
import { loader as sheetLoader } from "~/routes/api.v1.sheets.$sheetId";
import { getDb } from "~/utils/db.server";
import { getRedis } from "~/utils/redis.server";
import { createTestApiKey, createTestSheet, createTestUser } from "./factories";

/**
 * Replace in place: the sheet keeps its id (so its endpoint and every key's access), its rows and columns change in
 * one step, `meta.version` and the ETag move with them, and readers never see a mix of old and new rows.
 */
const db = getDb();
const redis = getRedis();
const deps = { db, redis };
const utf8 = (text: string) => new TextEncoder().encode(text);

beforeAll(() => clearHotCaches());
afterAll(() => clearHotCaches());

async function call(sheetId: string, key: string, query = "", headers: Record<string, string> = {}) {
  const request = new Request(`http://localhost/api/v1/sheets/${sheetId}${query}`, {
    headers: { Authorization: `Bearer ${key}`, ...headers },
  });
  return sheetLoader({ request, params: { sheetId }, context: {} });
}

type Page = { data: Record<string, unknown>[]; meta: { total: number; version: number; updatedAt: string } };

/** A table whose every row says which generation it belongs to, so a mixed answer is visible. */
function generation(tag: string, rows: number, columns = "gen,n") {
  const lines = Array.from({ length: rows }, (_, i) => `${tag},${i}`);
  return parseCsv(utf8(`${columns}\n${lines.join("\n")}\n`));
}

describe("replaceSheetData", () => {
  it("keeps the sheet's id and endpoint, swaps rows and columns, and moves version and updated time", async () => {
    const user = await createTestUser(db);
    const { key } = await createTestApiKey(db, user.id);
    const { sheetId } = await createTestSheet(db, user.id, { csv: "id,name\n1,Ada\n2,Grace\n" });
    const before = await call(sheetId, key);
    const first = (await before.json()) as Page;
    expect(first.meta.version).toBe(1);
    expect(first.data).toEqual([
      { id: 1, name: "Ada" },
      { id: 2, name: "Grace" },
    ]);

    const replaced = await replaceSheetData(deps, {
      sheetId,
      userId: user.id,
      parsed: parseCsv(utf8("name,city,score\nLin,Oslo,3\n")),
    });
    expect(replaced).toMatchObject({ sheetId, rows: 1, columns: ["name", "city", "score"], version: 2 });
    expect(replaced!.dataUpdatedAt.getTime()).toBeGreaterThan(new Date(first.meta.updatedAt).getTime());

    // A new column is accepted at once, though this process still holds the old columns: a parameter refusal is
    // confirmed against the owner's cache version first.
    const byNewColumn = await call(sheetId, key, "?city=Oslo&fields=name");
    expect(byNewColumn.status).toBe(200);
    expect(((await byNewColumn.json()) as Page).data).toEqual([{ name: "Lin" }]);

    // Same URL, same key: the new rows, with the new columns, in this process (its cached sheet was invalidated
    // through the owner's cache version, which the replacement bumped).
    const after = await call(sheetId, key);
    expect(after.status).toBe(200);
    const second = (await after.json()) as Page;
    expect(second.data).toEqual([{ name: "Lin", city: "Oslo", score: 3 }]);
    expect(second.meta).toMatchObject({ total: 1, version: 2, updatedAt: replaced!.dataUpdatedAt.toISOString() });
    expect(after.headers.get("ETag")).not.toBe(before.headers.get("ETag"));
    // A client revalidating the old page gets the new one, not a 304.
    const revalidated = await call(sheetId, key, "", { "If-None-Match": before.headers.get("ETag")! });
    expect(revalidated.status).toBe(200);
    // The old columns are gone from the query parser too.
    expect((await call(sheetId, key, "?id=1")).status).toBe(400);
  });

  it("answers null and changes nothing for another owner's sheet or a missing one", async () => {
    const owner = await createTestUser(db);
    const other = await createTestUser(db);
    const { sheetId } = await createTestSheet(db, owner.id, { csv: "a\n1\n" });
    const parsed = parseCsv(utf8("a\n2\n"));
    expect(await replaceSheetData(deps, { sheetId, userId: other.id, parsed })).toBeNull();
    expect(await replaceSheetData(deps, { sheetId: "no-such-sheet", userId: owner.id, parsed })).toBeNull();
    const sheet = await getSheetForQuery(db, owner.id, sheetId);
    expect(sheet).toMatchObject({ version: 1, rowCount: 1 });
    expect((await querySheetRows(db, sheet!, { limit: 10, offset: 0, filters: [] })).rows).toEqual([{ a: 1 }]);
  });

  it("bumps the owner's cache version after the new rows commit, so every process reloads", async () => {
    const user = await createTestUser(db);
    const { sheetId } = await createTestSheet(db, user.id, { csv: "a\n1\n" });
    const seen = await redis.get<string>(ownerVersionKey(user.id));
    await replaceSheetData(deps, { sheetId, userId: user.id, parsed: parseCsv(utf8("a\n2\n")) });
    const now = await redis.get<string>(ownerVersionKey(user.id));
    expect(now).toBeTruthy();
    expect(now).not.toBe(seen);
  });

  it("lets a reader holding the old version read the old rows whole, and drops versions two behind", async () => {
    const user = await createTestUser(db);
    const { sheetId } = await createTestSheet(db, user.id, { csv: "gen,n\nA,0\nA,1\n" });
    const v1 = (await getSheetForQuery(db, user.id, sheetId))!;
    await replaceSheetData(deps, { sheetId, userId: user.id, parsed: generation("B", 3) });
    const all = { limit: 100, offset: 0, filters: [] };
    // An API process that cached the sheet before the replacement reads version 1's rows, not a mix and not none.
    expect((await querySheetRows(db, v1, all)).rows.map((row) => row.gen)).toEqual(["A", "A"]);
    const v2 = (await getSheetForQuery(db, user.id, sheetId))!;
    expect((await querySheetRows(db, v2, all)).rows.map((row) => row.gen)).toEqual(["B", "B", "B"]);

    await replaceSheetData(deps, { sheetId, userId: user.id, parsed: generation("C", 1) });
    const kept = await db.sheetRow.groupBy({
      by: ["version"],
      where: { sheetId },
      _count: true,
      orderBy: { version: "asc" },
    });
    expect(kept.map((group) => [group.version, group._count])).toEqual([
      [2, 3],
      [3, 1],
    ]);
  });

  it("queues concurrent replacements of one sheet: each gets its own version, the last one wins", async () => {
    const user = await createTestUser(db);
    const { sheetId } = await createTestSheet(db, user.id, { csv: "gen,n\nA,0\n" });
    const results = await Promise.all(
      ["B", "C", "D"].map((tag) => replaceSheetData(deps, { sheetId, userId: user.id, parsed: generation(tag, 50) })),
    );
    expect(results.map((result) => result!.version).sort()).toEqual([2, 3, 4]);
    const sheet = (await getSheetForQuery(db, user.id, sheetId))!;
    expect(sheet.version).toBe(4);
    const winner = results.find((result) => result!.version === 4)!;
    const { rows } = await querySheetRows(db, sheet, { limit: 100, offset: 0, filters: [] });
    expect(rows).toHaveLength(50);
    expect(new Set(rows.map((row) => row.gen)).size).toBe(1);
    expect(winner.rows).toBe(50);
  });

  it("never answers a mix of old and new rows while reads hammer the API during replacements", async () => {
    const user = await createTestUser(db, { monthlyLimit: 1_000_000 });
    const { key } = await createTestApiKey(db, user.id);
    const ROWS = 1_500;
    const tags = ["A", "B", "C", "D", "E", "F"];
    const { sheetId } = await createTestSheet(db, user.id, {
      csv: `gen,n\n${Array.from({ length: ROWS }, (_, i) => `A,${i}`).join("\n")}\n`,
    });
    // Which generation each version holds; version 1 is the upload.
    const tagOfVersion = new Map<number, string>([[1, "A"]]);

    let replacing = true;
    const answers: Page[] = [];
    const reader = async () => {
      while (replacing) {
        // Different pages, sorts and filters, so most reads miss the page cache and go to Postgres.
        const offset = Math.floor(Math.random() * ROWS);
        const query = [`?limit=1000&offset=${offset}`, `?sort=n&order=desc&offset=${offset}`, "?search=1"][offset % 3];
        const response = await call(sheetId, key, query);
        expect(response.status).toBe(200);
        answers.push((await response.json()) as Page);
      }
    };
    const readers = Array.from({ length: 6 }, reader);
    for (const tag of tags.slice(1)) {
      // A pause between replacements: a call gives up (503) when its account changes more than three times while
      // it is checked, which back-to-back replacements of one sheet can do; customers replace minutes apart.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const replaced = await replaceSheetData(deps, { sheetId, userId: user.id, parsed: generation(tag, ROWS) });
      tagOfVersion.set(replaced!.version, tag);
    }
    replacing = false;
    await Promise.all(readers);

    expect(answers.length).toBeGreaterThan(tags.length);
    const versionsSeen = new Set<number>();
    for (const answer of answers) {
      const gens = new Set(answer.data.map((row) => row.gen));
      // Every row of one answer comes from one version, and it is the version the answer says.
      expect(gens.size).toBeLessThanOrEqual(1);
      if (gens.size === 1) expect([...gens][0]).toBe(tagOfVersion.get(answer.meta.version));
      versionsSeen.add(answer.meta.version);
    }
    // The reads really overlapped the replacements.
    expect(versionsSeen.size).toBeGreaterThan(1);
  }, 120_000);
});

describe("parsing from any source", () => {
  it("reads a CSV stream the same as its bytes", async () => {
    const bytes = utf8("a;b\n1;x\n");
    async function* chunks() {
      yield bytes.subarray(0, 3);
      yield bytes.subarray(3);
    }
    expect(await parseSheetStream(chunks(), "csv")).toEqual(await parseSheetBytes(bytes, "csv"));
    expect(await parseSheetBytes(bytes, "csv")).toEqual({ columns: ["a", "b"], rows: [{ a: 1, b: "x" }] });
  });

  it("stops reading a stream past 10 MB and refuses it with 413", async () => {
    let produced = 0;
    async function* endless() {
      const chunk = new Uint8Array(1024 * 1024).fill(0x61);
      for (;;) {
        produced++;
        yield chunk;
      }
    }
    await expect(parseSheetStream(endless(), "csv")).rejects.toMatchObject({ status: 413 });
    expect(produced).toBe(11);
  });

  it("tells the format by the extension, else by the content, and refuses the old .xls", () => {
    const zip = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0]);
    const ole = new Uint8Array([0xd0, 0xcf, 0x11, 0xe0, 0]);
    expect(formatOfFile("Book.XLSX", utf8("a"))).toBe("xlsx");
    expect(formatOfFile("data.csv", zip)).toBe("csv");
    expect(formatOfFile("export.txt", utf8("a"))).toBe("csv");
    expect(formatOfFile("download", zip)).toBe("xlsx");
    expect(formatOfFile(undefined, utf8("a,b"))).toBe("csv");
    expect(() => formatOfFile("old.xls", utf8("a"))).toThrow(/\.xls/);
    expect(() => formatOfFile("download", ole)).toThrow(expect.objectContaining({ status: 415 }));
    expect(worksheetOption("  Data ")).toEqual({ worksheet: "Data" });
    expect(worksheetOption("  ")).toEqual({});
    expect(worksheetOption(null)).toEqual({});
  });

  it("refuses a worksheet name for a CSV", async () => {
    await expect(parseSheetBytes(utf8("a\n1\n"), "csv", { worksheet: "Sheet1" })).rejects.toThrow(/XLSX/);
  });
});
