import fs from "node:fs";
import path from "node:path";
import { createApiKey } from "~/models/api-keys.server";
import { importSheet } from "~/models/csv-import.server";
import { createUser, normalizeEmail } from "~/models/user.server";
import { closeDb, type Db, getDb } from "~/utils/db.server";
import { getEnv, loadRawEnv } from "~/utils/env.server";
import { requireReachableDatabase } from "./lib/database";

/**
 * `npm run db:seed`: a demo account with one sheet and one API key, so a new developer can click around and call
 * the API at once. Safe to run again: an existing demo account is left as it is.
 */
const DEMO_EMAIL = "demo@sheetmeter.local";
const DEMO_PASSWORD = "demo password";

async function seedDemoAccount(db: Db) {
  const existing = await db.user.findUnique({ where: { email: normalizeEmail(DEMO_EMAIL) }, select: { id: true } });
  if (existing) {
    console.log(`Demo account exists: ${DEMO_EMAIL} / ${DEMO_PASSWORD}`);
    console.log(JSON.stringify({ userId: existing.id, created: false }));
    return;
  }
  const user = await createUser(db, { email: DEMO_EMAIL, password: DEMO_PASSWORD, monthlyLimit: 1000 });
  const bytes = fs.readFileSync(path.resolve(import.meta.dirname, "../prisma/seed/planets.csv"));
  const sheet = await importSheet(db, { userId: user.id, name: "Planets", bytes });
  const { key } = await createApiKey(db, user.id, "Demo key");
  const appUrl = getEnv().APP_URL;
  console.log(`Log in at ${appUrl}/login as ${DEMO_EMAIL} / ${DEMO_PASSWORD}`);
  console.log(
    `curl -H "Authorization: Bearer ${key}" "${appUrl}/api/v1/sheets/${sheet.sheetId}?sort=moons&order=desc"`,
  );
  console.log(JSON.stringify({ userId: user.id, sheetId: sheet.sheetId, key, created: true }));
}

// The demo password is printed in this file, so a seeded production database would have an account anyone can open.
if (loadRawEnv().NODE_ENV === "production") {
  console.error("db:seed refuses to run with NODE_ENV=production: it creates a demo account whose password is public.");
  process.exit(1);
}

try {
  await requireReachableDatabase();
  try {
    await seedDemoAccount(getDb());
  } finally {
    await closeDb();
  }
} catch (error) {
  console.error(`db:seed failed: ${(error as Error).message}`);
  process.exitCode = 1;
}
