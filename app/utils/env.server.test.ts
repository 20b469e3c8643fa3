import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readDevStackRecord, removeDevStackRecord, writeDevStackRecord } from "./dev-stack-record.server";
import { loadRawEnv, parseEnv, PRODUCTION_REQUIRED } from "./env.server";

const valid = {
  DATABASE_URL: "postgresql://u@h:5432/db",
  UPSTASH_REDIS_REST_URL: "https://eu1-x.upstash.io",
  UPSTASH_REDIS_REST_TOKEN: "t",
  QSTASH_URL: "https://qstash.upstash.io",
  QSTASH_TOKEN: "q",
  QSTASH_CURRENT_SIGNING_KEY: "sig_a",
  QSTASH_NEXT_SIGNING_KEY: "sig_b",
  APP_URL: "https://sheetmeter.example.com/",
  SESSION_SECRET: "x".repeat(40),
};

describe("environment", () => {
  it("accepts a complete production configuration and applies defaults", () => {
    const env = parseEnv({ ...valid, NODE_ENV: "production" });
    expect(env.APP_URL).toBe("https://sheetmeter.example.com");
    expect(env.SYNC_TIME_BUDGET_MS).toBe(8000);
  });

  it("bounds every Postgres wait by default and refuses a timeout that would not bound it", () => {
    expect(parseEnv(valid)).toMatchObject({
      DATABASE_CONNECT_TIMEOUT_MS: 2000,
      DATABASE_STATEMENT_TIMEOUT_MS: 2000,
      DATABASE_BULK_STATEMENT_TIMEOUT_MS: 30_000,
    });
    expect(() =>
      parseEnv({ ...valid, DATABASE_STATEMENT_TIMEOUT_MS: "0", DATABASE_CONNECT_TIMEOUT_MS: "soon" }),
    ).toThrow(/DATABASE_CONNECT_TIMEOUT_MS[\s\S]*DATABASE_STATEMENT_TIMEOUT_MS/);
  });

  it("names every bad variable at once", () => {
    expect(() =>
      parseEnv({ ...valid, DATABASE_URL: undefined, APP_URL: "not a url", SESSION_SECRET: "short" }),
    ).toThrow(/DATABASE_URL: is not set[\s\S]*APP_URL[\s\S]*SESSION_SECRET: must be at least 32 characters/);
  });

  it("refuses the example session secret in production only", () => {
    const example = loadRawEnv({}).SESSION_SECRET!;
    expect(() => parseEnv({ ...valid, SESSION_SECRET: example, NODE_ENV: "production" })).toThrow(/SESSION_SECRET/);
    expect(parseEnv({ ...valid, SESSION_SECRET: example, NODE_ENV: "development" }).SESSION_SECRET).toBe(example);
  });

  it("reads the environment first, then fills the gaps from the local defaults", () => {
    const raw = loadRawEnv({ APP_URL: "https://from-env.example" });
    expect(raw.APP_URL).toBe("https://from-env.example");
    expect(raw.QSTASH_CURRENT_SIGNING_KEY).toMatch(/^sig_/);
  });
});

describe("production configuration", () => {
  const production = { ...valid, NODE_ENV: "production" };
  const examples = () => loadRawEnv({ NODE_ENV: "development" });
  const problemsOf = (raw: Record<string, string | undefined>) => {
    try {
      parseEnv(raw);
      return "";
    } catch (error) {
      return (error as Error).message;
    }
  };

  it("never fills a gap from .env.example", () => {
    const raw = loadRawEnv({ NODE_ENV: "production" });
    expect(examples().QSTASH_CURRENT_SIGNING_KEY).toMatch(/^sig_/);
    for (const name of PRODUCTION_REQUIRED) expect(raw[name], name).toBeUndefined();
  });

  it("refuses to start with the signing keys unset, naming every missing variable at once", () => {
    // The forged-sync probe: production with nothing set used to start on the example's public signing keys.
    const message = problemsOf(loadRawEnv({ NODE_ENV: "production" }));
    for (const name of PRODUCTION_REQUIRED) expect(message).toContain(`${name}: is required in production`);
  });

  it("refuses any required value equal to its local default", () => {
    const local = examples();
    const message = problemsOf({
      ...production,
      QSTASH_CURRENT_SIGNING_KEY: local.QSTASH_CURRENT_SIGNING_KEY,
      QSTASH_NEXT_SIGNING_KEY: local.QSTASH_NEXT_SIGNING_KEY,
      UPSTASH_REDIS_REST_TOKEN: local.UPSTASH_REDIS_REST_TOKEN,
    });
    expect(message).toMatch(/QSTASH_CURRENT_SIGNING_KEY: is the local default/);
    expect(message).toMatch(/QSTASH_NEXT_SIGNING_KEY: is the local default/);
    expect(message).toMatch(/UPSTASH_REDIS_REST_TOKEN: is the local default/);
  });

  it("requires https for the app, Redis and QStash, all named at once", () => {
    const message = problemsOf({
      ...production,
      APP_URL: "http://sheetmeter.example.com",
      UPSTASH_REDIS_REST_URL: "http://eu1-x.upstash.io",
      QSTASH_URL: "http://qstash.upstash.io",
    });
    for (const name of ["APP_URL", "UPSTASH_REDIS_REST_URL", "QSTASH_URL"])
      expect(message).toContain(`${name}: must be an https:// URL in production`);
  });

  it("lifts the https rule for a loopback test run only when every URL is loopback", () => {
    const loopback = {
      ...production,
      SHEETMETER_ALLOW_INSECURE_LOCAL: "1",
      DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/sm_e2e",
      APP_URL: "http://127.0.0.1:4123",
      UPSTASH_REDIS_REST_URL: "http://127.0.0.1:4124",
      QSTASH_URL: "http://localhost:4125",
    };
    expect(parseEnv(loopback).APP_URL).toBe("http://127.0.0.1:4123");
    expect(problemsOf({ ...loopback, SHEETMETER_ALLOW_INSECURE_LOCAL: undefined })).toMatch(/APP_URL: must be/);
    // One address off this machine and the escape hatch is closed for all of them.
    const reachable = problemsOf({ ...loopback, APP_URL: "http://sheetmeter.example.com" });
    expect(reachable).toMatch(/APP_URL: must be an https:\/\/ URL \(SHEETMETER_ALLOW_INSECURE_LOCAL=1 only applies/);
    expect(reachable).toMatch(/UPSTASH_REDIS_REST_URL: must be/);
    expect(problemsOf({ ...loopback, DATABASE_URL: "postgresql://u@db.internal:5432/x" })).toMatch(/QSTASH_URL/);
  });

  it("refuses to fetch sheet sources from loopback in production, except in an all-loopback test run", () => {
    expect(parseEnv(production).SHEET_FETCH_ALLOW_LOOPBACK).toBe("0");
    expect(problemsOf({ ...production, SHEET_FETCH_ALLOW_LOOPBACK: "1" })).toMatch(
      /SHEET_FETCH_ALLOW_LOOPBACK: must not be 1 in production/,
    );
    const loopback = {
      ...production,
      SHEETMETER_ALLOW_INSECURE_LOCAL: "1",
      DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/sm_e2e",
      APP_URL: "http://127.0.0.1:4123",
      UPSTASH_REDIS_REST_URL: "http://127.0.0.1:4124",
      QSTASH_URL: "http://127.0.0.1:4125",
      SHEET_FETCH_ALLOW_LOOPBACK: "1",
    };
    expect(parseEnv(loopback).SHEET_FETCH_ALLOW_LOOPBACK).toBe("1");
    expect(problemsOf({ ...loopback, APP_URL: "https://sheetmeter.example.com" })).toMatch(
      /SHEET_FETCH_ALLOW_LOOPBACK: must not be 1/,
    );
    expect(parseEnv({ ...valid, SHEET_FETCH_ALLOW_LOOPBACK: "1" }).SHEET_FETCH_ALLOW_LOOPBACK).toBe("1");
  });

  it("keeps the local defaults working outside production", () => {
    expect(parseEnv({ ...examples(), DATABASE_URL: valid.DATABASE_URL }).APP_URL).toBe("http://localhost:3000");
  });
});

describe("the dev stack's record", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sheetmeter-env-"));
  const recordFile = path.join(dir, "dev-stack.json");
  const recorded = {
    DATABASE_URL: "postgresql://postgres@127.0.0.1:5433/postgres",
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:18079",
  };
  const local = { NODE_ENV: "development" };
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("fills what the environment and .env leave unset, before the example defaults", () => {
    writeDevStackRecord(recorded, recordFile);
    const raw = loadRawEnv(local, { devStackRecord: recordFile });
    expect(raw.DATABASE_URL).toBe(recorded.DATABASE_URL);
    expect(raw.UPSTASH_REDIS_REST_URL).toBe(recorded.UPSTASH_REDIS_REST_URL);
    expect(raw.QSTASH_URL).toBe(loadRawEnv({}).QSTASH_URL);

    const fromEnv = "postgresql://u@elsewhere:5432/db";
    expect(loadRawEnv({ ...local, DATABASE_URL: fromEnv }, { devStackRecord: recordFile }).DATABASE_URL).toBe(fromEnv);
  });

  it("is never read in production or by the tests", () => {
    writeDevStackRecord(recorded, recordFile);
    for (const NODE_ENV of ["production", "test"]) {
      expect(loadRawEnv({ NODE_ENV }, { devStackRecord: recordFile }).DATABASE_URL).toBeUndefined();
    }
  });

  it("is ignored once the process that wrote it is gone", () => {
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    fs.writeFileSync(recordFile, JSON.stringify({ pid: gone, env: recorded }));
    expect(readDevStackRecord(recordFile)).toEqual({});
    expect(loadRawEnv(local, { devStackRecord: recordFile }).DATABASE_URL).toBeUndefined();
  });

  it("is removed only by the process that wrote it", () => {
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"]);
    try {
      fs.writeFileSync(recordFile, JSON.stringify({ pid: other.pid, env: recorded }));
      removeDevStackRecord(recordFile);
      expect(readDevStackRecord(recordFile)).toEqual(recorded);
    } finally {
      other.kill();
    }
    writeDevStackRecord(recorded, recordFile);
    removeDevStackRecord(recordFile);
    expect(fs.existsSync(recordFile)).toBe(false);
  });
});
