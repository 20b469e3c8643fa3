import fs from "node:fs";
import path from "node:path";
import { getSchema, type Field, type Model, type BlockAttribute } from "@mrleebo/prisma-ast";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The SQL migrations are written by hand (Prisma's schema engine cannot be downloaded here), so this test holds
 * them to schema.prisma: every model is a table, every scalar field a column of a compatible type and nullability,
 * every @id/@unique/@@index an index on exactly those columns, and the database has no column the schema lacks.
 */
const schema = getSchema(fs.readFileSync(path.resolve("prisma/schema.prisma"), "utf8"));
const models = schema.list.filter((block): block is Model => block.type === "model");
const modelNames = new Set(models.map((model) => model.name));

// Prisma's default Postgres type for each scalar, as information_schema names it.
const POSTGRES_TYPE: Record<string, string> = {
  String: "text",
  Int: "integer",
  BigInt: "bigint",
  Float: "double precision",
  Boolean: "boolean",
  DateTime: "timestamp without time zone",
  Json: "jsonb",
  Decimal: "numeric",
};

const fieldsOf = (model: Model) =>
  model.properties.filter(
    (property): property is Field => property.type === "field" && !modelNames.has(String(property.fieldType)),
  );

const columnList = (attribute: BlockAttribute): string[] => {
  const value = attribute.args?.[0]?.value as { type: string; args: string[] } | undefined;
  return value?.type === "array" ? value.args.map(String) : [];
};

interface Column {
  table_name: string;
  column_name: string;
  data_type: string;
  udt_name: string;
  is_nullable: "YES" | "NO";
}

describe("migrations match prisma/schema.prisma", () => {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  let columns: Column[] = [];
  let indexes: { table: string; unique: boolean; columns: string[] }[] = [];

  beforeAll(async () => {
    await client.connect();
    columns = (
      await client.query<Column>(
        `SELECT table_name, column_name, data_type, udt_name, is_nullable FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
      )
    ).rows;
    indexes = (
      await client.query(
        `SELECT t.relname AS table, ix.indisunique AS unique,
                array_agg(a.attname ORDER BY k.ord)::text[] AS columns
         FROM pg_index ix
         JOIN pg_class t ON t.oid = ix.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
         CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
         GROUP BY ix.indexrelid, t.relname, ix.indisunique`,
      )
    ).rows;
  });
  afterAll(() => client.end());

  for (const model of models) {
    describe(model.name, () => {
      it("has every scalar field as a column of a compatible type and nullability", () => {
        for (const field of fieldsOf(model)) {
          const column = columns.find((c) => c.table_name === model.name && c.column_name === field.name);
          expect(column, `${model.name}.${field.name} is missing from the database`).toBeDefined();
          const expected = POSTGRES_TYPE[String(field.fieldType)];
          if (field.array) {
            expect(column!.data_type, `${model.name}.${field.name}`).toBe("ARRAY");
            expect(column!.udt_name, `${model.name}.${field.name}`).toBe(`_${expected === "text" ? "text" : expected}`);
          } else {
            expect(column!.data_type, `${model.name}.${field.name}`).toBe(expected);
            expect(column!.is_nullable, `${model.name}.${field.name} nullability`).toBe(field.optional ? "YES" : "NO");
          }
        }
      });

      it("has no column that the schema does not declare", () => {
        const declared = new Set(fieldsOf(model).map((field) => field.name));
        const extra = columns.filter((c) => c.table_name === model.name && !declared.has(c.column_name));
        expect(extra.map((c) => c.column_name)).toEqual([]);
      });

      it("has an index for every @id, @unique, @@id, @@unique and @@index", () => {
        const wanted: { columns: string[]; unique: boolean }[] = [];
        for (const field of fieldsOf(model)) {
          for (const attribute of field.attributes ?? []) {
            if (attribute.name === "id" || attribute.name === "unique")
              wanted.push({ columns: [field.name], unique: true });
          }
        }
        for (const property of model.properties) {
          if (property.type !== "attribute") continue;
          if (["id", "unique"].includes(property.name)) wanted.push({ columns: columnList(property), unique: true });
          if (property.name === "index") wanted.push({ columns: columnList(property), unique: false });
        }
        for (const index of wanted) {
          const found = indexes.find(
            (i) => i.table === model.name && i.unique === index.unique && i.columns.join() === index.columns.join(),
          );
          expect(
            found,
            `${model.name}(${index.columns.join(", ")}) ${index.unique ? "unique " : ""}index`,
          ).toBeDefined();
        }
      });
    });
  }

  it("has a table for every model and no table the schema lacks", () => {
    const tables = new Set(columns.map((c) => c.table_name));
    expect([...tables].sort()).toEqual([...modelNames].sort());
  });
});
