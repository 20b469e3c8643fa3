import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrismaClient } from "~/utils/db.server";
import { migrate } from "../scripts/lib/migrations";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "./pglite";

const dataDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sheetmeter-pglite-")), "pgdata");
let postgres: EmbeddedPostgres | undefined;

beforeAll(async () => {
  postgres = await startEmbeddedPostgres({ dataDir, port: 0 });
});

afterAll(async () => {
  await postgres?.close();
  fs.rmSync(path.dirname(dataDir), { recursive: true, force: true });
});

describe("embedded Postgres", () => {
  it("takes the migrations, serves Prisma, and keeps the data across a restart", async () => {
    const first = await migrate(postgres!.url);
    expect(first.applied.length).toBeGreaterThan(0);

    const prisma = createPrismaClient(postgres!.url);
    const created = await prisma.user.create({
      data: { email: "ada@example.com", passwordHash: "not-a-real-hash", monthlyLimit: 5000 },
      select: { id: true },
    });
    // Prisma's adapter opens a pool; concurrent queries and a transaction exercise several connections at once.
    const [found, count] = await Promise.all([
      prisma.user.findUnique({ where: { id: created.id }, select: { email: true, monthlyLimit: true } }),
      prisma.user.count(),
      prisma.$transaction([prisma.user.count(), prisma.user.findMany({ select: { id: true } })]),
    ]);
    expect(found).toEqual({ email: "ada@example.com", monthlyLimit: 5000 });
    expect(count).toBe(1);
    await prisma.$disconnect();

    await postgres!.close();
    postgres = await startEmbeddedPostgres({ dataDir, port: 0 });

    expect((await migrate(postgres.url)).applied).toEqual([]);
    const again = createPrismaClient(postgres.url);
    expect(await again.user.findUnique({ where: { id: created.id }, select: { email: true } })).toEqual({
      email: "ada@example.com",
    });
    await again.$disconnect();
  });

  it("keeps concurrent connections apart, even when large parameters split a query over several packets", async () => {
    const pool = new pg.Pool({ connectionString: postgres!.url, max: 8 });
    try {
      const results = await Promise.all(
        Array.from({ length: 120 }, async (_, i) => {
          // Different SQL per query: a statement prepared by another connection would give a different `k`.
          const padding = i % 4 === 0 ? "x".repeat(1_000_000) : "";
          const { rows } = await pool.query(`SELECT $1::int AS n, ${i}::int AS k, length($2::text) AS size`, [
            i,
            padding,
          ]);
          return rows[0].n === i && rows[0].k === i && rows[0].size === padding.length;
        }),
      );
      expect(results.every(Boolean)).toBe(true);

      // A transaction holds the backend, so another connection never sees (or joins) its uncommitted work.
      const inside = await pool.connect();
      await inside.query("BEGIN");
      await inside.query("CREATE TABLE pglite_probe (id int)");
      const outside = pool.query("SELECT to_regclass('pglite_probe') IS NOT NULL AS visible");
      await inside.query("INSERT INTO pglite_probe VALUES (1)");
      await inside.query("ROLLBACK");
      inside.release();
      expect((await outside).rows[0].visible).toBe(false);
    } finally {
      await pool.end();
    }
  });

  it("refuses a second instance on the same data directory", async () => {
    await expect(startEmbeddedPostgres({ dataDir, port: 0 })).rejects.toThrow(/in use by process/);
  });
});
