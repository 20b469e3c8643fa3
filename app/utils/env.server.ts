import fs from "node:fs";
import path from "node:path";
import { parse } from "dotenv";
import { z } from "zod";
import { DEV_STACK_RECORD_FILE, readDevStackRecord } from "./dev-stack-record.server";

/**
 * Every variable the server reads, validated once at start-up. Values come from the process environment first,
 * then `.env`, then what a running `npm run dev` recorded (its embedded Postgres and stand-ins), then the local
 * defaults in `.env.example`, so a fresh clone runs without copying anything while a deployment's own environment
 * always wins. In production only the environment and `.env` count: the example's keys are public, so a deployment
 * that silently fell back on them would accept syncs signed by anyone who read this repository.
 */
const EXAMPLE_SESSION_SECRET_PREFIX = "local-dev-secret-";
const EXAMPLE_FILE = ".env.example";

/** What production must set itself: each has a local default that is either public or points at this machine. */
export const PRODUCTION_REQUIRED = [
  "DATABASE_URL",
  "UPSTASH_REDIS_REST_URL",
  "UPSTASH_REDIS_REST_TOKEN",
  "QSTASH_URL",
  "QSTASH_TOKEN",
  "QSTASH_CURRENT_SIGNING_KEY",
  "QSTASH_NEXT_SIGNING_KEY",
  "APP_URL",
  "SESSION_SECRET",
] as const;

/** Tokens, keys and the app's own address travel over these; plain http would expose them or break signatures. */
const PRODUCTION_HTTPS = ["APP_URL", "UPSTASH_REDIS_REST_URL", "QSTASH_URL"] as const;

/**
 * The built app is also run with NODE_ENV=production by the browser tests and the benches, on loopback against
 * local stand-ins that speak plain http. Setting this to "1" lifts the https rule only, and only when every URL the
 * app is given points at this machine, so it cannot weaken a deployment that anything outside could reach.
 */
export const ALLOW_INSECURE_LOCAL = "SHEETMETER_ALLOW_INSECURE_LOCAL";
/** Lets sheet sources be fetched from this machine; see the schema below and productionProblems. */
export const SHEET_FETCH_ALLOW_LOOPBACK = "SHEET_FETCH_ALLOW_LOOPBACK";
const LOOPBACK_CHECKED = ["DATABASE_URL", ...PRODUCTION_HTTPS] as const;

/** How long a request path waits on Postgres, to connect and per statement, unless configured otherwise. */
export const DEFAULT_DATABASE_TIMEOUT_MS = 2000;

const schema = z
  .object({
    NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
    DATABASE_URL: z
      .string({ error: "is not set (`npm run dev` sets it to the embedded Postgres; in production set it)" })
      .regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL"),
    DATABASE_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(DEFAULT_DATABASE_TIMEOUT_MS),
    DATABASE_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(DEFAULT_DATABASE_TIMEOUT_MS),
    DATABASE_BULK_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
    UPSTASH_REDIS_REST_URL: z.url(),
    UPSTASH_REDIS_REST_TOKEN: z.string().min(1),
    // Capped well under the life of a quota operation record (quota.server.ts), which must outlast any resend.
    REDIS_TIMEOUT_MS: z.coerce.number().int().min(50).max(10_000).default(1000),
    QSTASH_URL: z.url(),
    QSTASH_TOKEN: z.string().min(1),
    QSTASH_CURRENT_SIGNING_KEY: z.string().min(1),
    QSTASH_NEXT_SIGNING_KEY: z.string().min(1),
    SYNC_TIME_BUDGET_MS: z.coerce.number().int().min(100).max(300_000).default(8000),
    APP_URL: z.url().transform((url) => url.replace(/\/+$/, "")),
    SESSION_SECRET: z.string().min(32, "must be at least 32 characters"),
    // How many proxies in front of the app append to X-Forwarded-For; the log-in and sign-up throttles count the
    // client address they name (client-address.server.ts). 0: no address is trusted, every client shares one key.
    TRUST_PROXY: z.coerce.number().int().min(0).max(10).default(0),
    // Kept so code past start-up can ask `allowsInsecureLocal(env)`; its rule is applied in productionProblems.
    SHEETMETER_ALLOW_INSECURE_LOCAL: z.string().optional(),
    // Sheets fetched from a URL (models/sheet-fetch.server.ts): "1" lets them come from this machine (loopback, and
    // plain http to it), for tests and `npm run dev`. Production refuses it (productionProblems).
    SHEET_FETCH_ALLOW_LOOPBACK: z.enum(["0", "1"]).default("0"),
    // From the first connection to the last byte of a source, redirects included.
    SHEET_FETCH_TIMEOUT_MS: z.coerce.number().int().min(1000).max(120_000).default(30_000),
    // The longest a source may keep us waiting for a connection, its headers, or the next piece of its body.
    SHEET_FETCH_IDLE_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  })
  .superRefine((env, ctx) => {
    // Also caught below when .env.example is at hand; a deployment may ship without it, this prefix travels anyway.
    if (env.NODE_ENV === "production" && env.SESSION_SECRET.startsWith(EXAMPLE_SESSION_SECRET_PREFIX)) {
      ctx.addIssue({
        code: "custom",
        path: ["SESSION_SECRET"],
        message: "is the local default from .env.example; set a secret of your own in production",
      });
    }
  });

export type Env = z.infer<typeof schema>;

function readDotenv(file: string): Record<string, string> {
  const full = path.resolve(process.cwd(), file);
  return fs.existsSync(full) ? parse(fs.readFileSync(full)) : {};
}

export interface LoadRawEnvOptions {
  /** The dev stack's record to fall back on, or false for none (the dev stack itself, which writes it). */
  devStackRecord?: string | false;
}

/** The raw variables in precedence order: environment, then .env, then the dev stack's record, then .env.example. */
export function loadRawEnv(
  source: Record<string, string | undefined> = process.env,
  { devStackRecord = DEV_STACK_RECORD_FILE }: LoadRawEnvOptions = {},
): Record<string, string | undefined> {
  const dotenv = readDotenv(".env");
  const nodeEnv = source.NODE_ENV ?? dotenv.NODE_ENV;
  // Production is configured explicitly and never guesses from a local file; tests make their own databases and
  // must not reach into a developer's running stack.
  const recorded =
    devStackRecord && nodeEnv !== "production" && nodeEnv !== "test" ? readDevStackRecord(devStackRecord) : {};
  const examples = nodeEnv === "production" ? {} : readDotenv(EXAMPLE_FILE);
  return { ...examples, ...recorded, ...dotenv, ...source };
}

export function isLoopbackUrl(value: string | undefined): boolean {
  if (!value) return false;
  try {
    const host = new URL(value).hostname;
    return host === "localhost" || host === "[::1]" || /^127(\.\d{1,3}){3}$/.test(host);
  } catch {
    return false;
  }
}

/**
 * Whether the loopback escape hatch is on: the variable is "1" and every URL the app is given points at this machine.
 * Takes raw variables or the parsed Env alike; webhook URLs (models/webhook-endpoints.server.ts) follow the same rule.
 */
export function allowsInsecureLocal(values: Partial<Record<string, unknown>>): boolean {
  return (
    values[ALLOW_INSECURE_LOCAL] === "1" &&
    LOOPBACK_CHECKED.every((name) => isLoopbackUrl(typeof values[name] === "string" ? values[name] : undefined))
  );
}

/**
 * The production rules, checked on the raw values so each offending variable is named once with the rule it breaks,
 * together with whatever the schema finds. `localDefaults` is what `.env.example` holds: compared, never used.
 */
function productionProblems(
  raw: Record<string, string | undefined>,
  localDefaults: Record<string, string>,
): Map<string, string> {
  const problems = new Map<string, string>();
  for (const name of PRODUCTION_REQUIRED) {
    const value = raw[name];
    if (value === undefined || value === "") problems.set(name, "is required in production and not set");
    else if (localDefaults[name] !== undefined && value === localDefaults[name])
      problems.set(name, "is the local default from .env.example; set your own value in production");
  }
  const insecureAllowed = allowsInsecureLocal(raw);
  for (const name of PRODUCTION_HTTPS) {
    const value = raw[name];
    if (problems.has(name) || !value || insecureAllowed || value.startsWith("https://")) continue;
    problems.set(
      name,
      raw[ALLOW_INSECURE_LOCAL] === "1"
        ? `must be an https:// URL (${ALLOW_INSECURE_LOCAL}=1 only applies when every URL is loopback)`
        : "must be an https:// URL in production",
    );
  }
  // A deployment that fetched customers' URLs from loopback would hand them its own admin ports. Only a run whose
  // every URL is loopback anyway (the browser tests, under the escape hatch above) may turn it on.
  if (raw[SHEET_FETCH_ALLOW_LOOPBACK] === "1" && !insecureAllowed) {
    problems.set(
      SHEET_FETCH_ALLOW_LOOPBACK,
      `must not be 1 in production (it lets sheet sources reach this machine); ${ALLOW_INSECURE_LOCAL}=1 with every URL loopback is the only exception`,
    );
  }
  return problems;
}

export function parseEnv(
  raw: Record<string, string | undefined>,
  localDefaults: Record<string, string> = readDotenv(EXAMPLE_FILE),
): Env {
  const problems = raw.NODE_ENV === "production" ? productionProblems(raw, localDefaults) : new Map<string, string>();
  const result = schema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const name = issue.path.join(".");
      if (!problems.has(name)) problems.set(name, issue.message);
    }
  }
  if (problems.size > 0 || !result.success) {
    const lines = [...problems].map(([name, message]) => `  ${name}: ${message}`);
    throw new Error(`Invalid environment variables:\n${lines.join("\n")}`);
  }
  return result.data;
}

let cached: Env | undefined;

/** The validated environment; throws naming every bad variable on first use. */
export function getEnv(): Env {
  cached ??= parseEnv(loadRawEnv());
  return cached;
}
