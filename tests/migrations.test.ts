import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { checksumOf, migrate, MIGRATIONS_DIR, readMigrationFiles } from "../scripts/lib/migrations";

const url = process.env.DATABASE_URL!;

describe("db:migrate", () => {
  const client = new pg.Client({ connectionString: url });
  afterAll(() => client.end());

  it("records every migration with Prisma's checksum and is a no-op the second time", async () => {
    const second = await migrate(url);
    expect(second.applied).toEqual([]);
    await client.connect();
    const { rows } = await client.query(
      `SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations" ORDER BY migration_name`,
    );
    const files = readMigrationFiles();
    expect(rows.map((row) => row.migration_name)).toEqual(files.map((file) => file.name));
    for (const [i, row] of rows.entries()) {
      expect(row.checksum).toBe(files[i].checksum);
      expect(row.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.applied_steps_count).toBe(1);
    }
  });

  it("refuses to run when an applied migration's file has changed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sm-migrations-"));
    fs.cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    const [first] = readMigrationFiles(dir);
    fs.appendFileSync(path.join(dir, first.name, "migration.sql"), "\n-- edited after the fact\n");
    await expect(migrate(url, dir)).rejects.toThrow(/was changed after it was applied/);
  });

  it("applies a new migration once, in a transaction that rolls back on failure", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sm-migrations-"));
    fs.cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    fs.mkdirSync(path.join(dir, "29990101000000_broken"));
    fs.writeFileSync(
      path.join(dir, "29990101000000_broken", "migration.sql"),
      'CREATE TABLE "Half" (id int);\nSELECT * FROM "DoesNotExist";\n',
    );
    await expect(migrate(url, dir)).rejects.toThrow(/29990101000000_broken failed and was rolled back/);
    const half = await client.query(`SELECT to_regclass('"Half"') AS t`);
    expect(half.rows[0].t).toBeNull();

    fs.writeFileSync(path.join(dir, "29990101000000_broken", "migration.sql"), 'CREATE TABLE "Whole" (id int);\n');
    expect((await migrate(url, dir)).applied).toEqual(["29990101000000_broken"]);
    expect((await migrate(url, dir)).applied).toEqual([]);
  });

  it("computes checksums as SHA-256 hex of the file", () => {
    expect(checksumOf("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
