import writeXlsxFile from "write-excel-file/node";
import { beforeAll, describe, expect, it } from "vitest";
import { action as sheetsAction, loader as sheetsLoader } from "~/routes/sheets";
import { getDb } from "~/utils/db.server";
import { createTestSheet, createTestUser } from "./factories";
import { getRequest, settle, TEST_ORIGIN } from "./helpers/requests";
import { signUpThroughForm } from "./helpers/sign-up";

/** /sheets "Replace data" and XLSX uploads, as the browser sends them (multipart forms). */
const db = getDb();
let cookie: string;
let userId: string;

beforeAll(async () => {
  ({ cookie, userId } = await signUpThroughForm("replace"));
});

function post(fields: Record<string, string | [Blob, string]>) {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === "string") form.set(name, value);
    else form.set(name, value[0], value[1]);
  }
  return settle(
    sheetsAction({
      request: new Request(`${TEST_ORIGIN}/sheets`, { method: "POST", headers: { Cookie: cookie }, body: form }),
      params: {},
      context: {},
    }),
  );
}

const csv = (text: string) => new Blob([text], { type: "text/csv" });

describe("/sheets: replace data", () => {
  it("replaces a sheet's rows and columns in place and says so on the page", async () => {
    const { sheetId } = await createTestSheet(db, userId, { name: "team", csv: "name\nAda\n" });
    const response = await post({
      intent: "replace",
      sheetId,
      file: [csv("name,role\nGrace,admiral\nLin,dev\n"), "t.csv"],
    });
    expect(response.status).toBe(302);
    const location = response.headers.get("Location")!;
    expect(location).toBe(`/sheets?preview=${sheetId}&replaced=1`);
    const page = await (
      await settle(sheetsLoader({ request: getRequest(location, { Cookie: cookie }), params: {}, context: {} }))
    ).json();
    const sheet = page.sheets.find((s: { id: string }) => s.id === sheetId);
    expect(sheet).toMatchObject({ name: "team", columns: ["name", "role"], rowCount: 2, version: 2 });
    expect(sheet.dataUpdatedAt).toMatch(/UTC$/);
    expect(page.justReplaced).toBe(true);
    expect(page.preview.rows).toEqual([
      { name: "Grace", role: "admiral" },
      { name: "Lin", role: "dev" },
    ]);
  });

  it("shows a refused file under that sheet's form and changes nothing", async () => {
    const { sheetId } = await createTestSheet(db, userId, { name: "kept", csv: "a\n1\n" });
    const refused = await post({ intent: "replace", sheetId, file: [csv("a,a\n1,2\n"), "bad.csv"] });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({ error: expect.stringMatching(/appears twice/), sheetId });
    const old = await post({
      intent: "replace",
      sheetId,
      file: [new Blob([new Uint8Array([0xd0, 0xcf, 0x11, 0xe0])]), "old.xls"],
    });
    expect(old.status).toBe(415);
    const empty = await post({ intent: "replace", sheetId });
    expect(empty.status).toBe(400);
    expect(await db.sheet.findUniqueOrThrow({ where: { id: sheetId } })).toMatchObject({ version: 1, rowCount: 1 });
  });

  it("answers 404 for another account's sheet and leaves it alone", async () => {
    const other = await createTestUser(db);
    const { sheetId } = await createTestSheet(db, other.id, { csv: "a\n1\n" });
    const response = await post({ intent: "replace", sheetId, file: [csv("a\n2\n"), "x.csv"] });
    expect(response.status).toBe(404);
    expect(await db.sheet.findUniqueOrThrow({ where: { id: sheetId } })).toMatchObject({ version: 1 });
  });

  it("uploads an XLSX workbook's named worksheet as a new sheet", async () => {
    const workbook = await writeXlsxFile([
      { sheet: "Readme", data: [["text"], ["see Data"]] },
      {
        sheet: "Data",
        data: [
          ["city", "pop"],
          ["Oslo", 709000],
        ],
      },
    ]).toBuffer();
    const response = await post({ file: [new Blob([new Uint8Array(workbook)]), "cities.xlsx"], worksheet: " Data " });
    expect(response.status).toBe(302);
    const sheetId = new URL(response.headers.get("Location")!, TEST_ORIGIN).searchParams.get("preview")!;
    expect(await db.sheet.findUniqueOrThrow({ where: { id: sheetId } })).toMatchObject({
      name: "cities",
      columns: ["city", "pop"],
      rowCount: 1,
    });
  });
});
