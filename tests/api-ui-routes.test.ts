import { beforeAll, describe, expect, it } from "vitest";
import { MAX_CSV_BYTES } from "~/models/csv-import.server";
import { action as keysAction, loader as keysLoader } from "~/routes/keys";
import { action as sheetsAction, loader as sheetsLoader } from "~/routes/sheets";
import { loader as sheetApiLoader } from "~/routes/api.v1.sheets.$sheetId";
import { getDb } from "~/utils/db.server";
import { getEnv } from "~/utils/env.server";
import { createTestSheet, createTestUser } from "./factories";
import { formRequest, getRequest, settle, TEST_ORIGIN } from "./helpers/requests";
import { signUpThroughForm } from "./helpers/sign-up";

/** The /sheets and /keys pages' loaders and actions, as the browser would drive them. */
let cookie: string;
let userId: string;

beforeAll(async () => {
  ({ cookie, userId } = await signUpThroughForm("ui"));
});

function upload(file: Blob | null, fileName = "people.csv", name = "") {
  const form = new FormData();
  if (file) form.set("file", file, fileName);
  form.set("name", name);
  return settle(
    sheetsAction({
      request: new Request(`${TEST_ORIGIN}/sheets`, { method: "POST", headers: { Cookie: cookie }, body: form }),
      params: {},
      context: {},
    }),
  );
}

describe("/sheets", () => {
  it("sends visitors who are not logged in to /login", async () => {
    const response = await settle(sheetsLoader({ request: getRequest("/sheets"), params: {}, context: {} }));
    expect(response.status).toBe(302);
    expect(response.headers.get("Location")).toMatch(/^\/login\?redirectTo=%2Fsheets/);
  });

  it("imports an uploaded CSV and opens its preview", async () => {
    const response = await upload(new Blob(["name;score\nAda;3,5\nBo;4\n"], { type: "text/csv" }));
    expect(response.status).toBe(302);
    const location = response.headers.get("Location")!;
    expect(location).toMatch(/^\/sheets\?preview=\w+&imported=1$/);

    const page = await settle(
      sheetsLoader({ request: getRequest(location, { Cookie: cookie }), params: {}, context: {} }),
    );
    const data = await page.json();
    expect(data.sheets).toHaveLength(1);
    expect(data.sheets[0]).toMatchObject({ name: "people", rowCount: 2, columns: ["name", "score"] });
    expect(data.apiBase).toMatch(/\/api\/v1\/sheets\/$/);
    expect(data.preview.rows).toEqual([
      { name: "Ada", score: "3,5" },
      { name: "Bo", score: 4 },
    ]);
    expect(data.justImported).toBe(true);
  });

  it("explains a refused file and stores nothing", async () => {
    const before = await getDb().sheet.count({ where: { userId } });
    const duplicate = await upload(new Blob(["a,a\n1,2\n"]));
    expect(duplicate.status).toBe(400);
    expect((await duplicate.json()).error).toMatch(/appears twice/);
    const missing = await upload(null);
    expect(missing.status).toBe(400);
    expect((await missing.json()).error).toMatch(/Choose a CSV file/);
    const huge = await upload(new Blob([new Uint8Array(MAX_CSV_BYTES + 1).fill(0x61)]));
    expect(huge.status).toBe(413);
    expect((await huge.json()).error).toMatch(/larger than 10 MB/);
    expect(await getDb().sheet.count({ where: { userId } })).toBe(before);
  });

  it("deletes only the user's own sheet", async () => {
    const created = await upload(new Blob(["x\n1\n"]), "gone.csv");
    const sheetId = new URL(created.headers.get("Location")!, TEST_ORIGIN).searchParams.get("preview")!;
    const other = await createTestUser(getDb());
    const { sheetId: foreignSheetId } = await createTestSheet(getDb(), other.id, { name: "theirs", csv: "x\n1\n" });

    await settle(
      sheetsAction({
        request: formRequest("/sheets", { intent: "delete", sheetId: foreignSheetId }, cookie),
        params: {},
        context: {},
      }),
    );
    expect(await getDb().sheet.count({ where: { id: foreignSheetId } })).toBe(1);
    const response = await settle(
      sheetsAction({ request: formRequest("/sheets", { intent: "delete", sheetId }, cookie), params: {}, context: {} }),
    );
    expect(response.status).toBe(302);
    expect(await getDb().sheet.count({ where: { id: sheetId } })).toBe(0);
  });
});

describe("/keys", () => {
  it("shows a new key once, lists it by prefix, and revokes it", async () => {
    const created = await settle(
      keysAction({
        request: formRequest("/keys", { intent: "create", name: " Website " }, cookie),
        params: {},
        context: {},
      }),
    );
    const { created: newKey } = await created.json();
    expect(newKey.name).toBe("Website");
    expect(newKey.key).toMatch(/^sm_live_/);

    const list = await (
      await settle(keysLoader({ request: getRequest("/keys", { Cookie: cookie }), params: {}, context: {} }))
    ).json();
    const listed = list.keys.find((key: { name: string }) => key.name === "Website");
    expect(listed).toMatchObject({ prefix: newKey.key.slice(0, 14), lastUsedAt: null, revokedAt: null });
    expect(JSON.stringify(list)).not.toContain(newKey.key);

    const { sheetId: keySheetId } = await createTestSheet(getDb(), userId, { name: "k", csv: "x\n1\n" });
    const call = () =>
      sheetApiLoader({
        request: new Request(`${TEST_ORIGIN}/api/v1/sheets/${keySheetId}`, {
          headers: { Authorization: `Bearer ${newKey.key}` },
        }),
        params: { sheetId: keySheetId },
        context: {},
      });
    expect((await call()).status).toBe(200);

    await settle(
      keysAction({
        request: formRequest("/keys", { intent: "revoke", keyId: listed.id }, cookie),
        params: {},
        context: {},
      }),
    );
    expect((await call()).status).toBe(401);
  });

  it("asks for a name", async () => {
    const response = await settle(
      keysAction({ request: formRequest("/keys", { intent: "create", name: "  " }, cookie), params: {}, context: {} }),
    );
    expect(response.status).toBe(400);
    expect((await response.json()).error).toMatch(/Name the key/);
  });
});

describe("onboarding: a new key's ready-to-run command and each sheet's sample row", () => {
  it("points the command at the newest sheet, or at /api/v1/usage before there is one", async () => {
    const fresh = await signUpThroughForm("ui-onboarding");
    const appUrl = getEnv().APP_URL;
    const loadKeys = async () =>
      (
        await settle(keysLoader({ request: getRequest("/keys", { Cookie: fresh.cookie }), params: {}, context: {} }))
      ).json();
    expect((await loadKeys()).tryIt).toEqual({ sheetName: null, url: `${appUrl}/api/v1/usage` });

    const { sheetId } = await createTestSheet(getDb(), fresh.userId, { name: "first", csv: "x,y\n1,a\n2,b\n" });
    expect((await loadKeys()).tryIt).toEqual({ sheetName: "first", url: `${appUrl}/api/v1/sheets/${sheetId}` });

    const sheets = await (
      await settle(sheetsLoader({ request: getRequest("/sheets", { Cookie: fresh.cookie }), params: {}, context: {} }))
    ).json();
    expect(sheets.sheets[0]).toMatchObject({ id: sheetId, firstRow: { x: 1, y: "a" } });
  });
});
