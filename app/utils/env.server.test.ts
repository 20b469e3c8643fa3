import { describe, expect, it } from "vitest";
import { loadRawEnv, parseEnv } from "./env.server";

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
