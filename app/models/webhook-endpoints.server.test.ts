import { describe, expect, it } from "vitest";
import { checkWebhookUrl, MAX_WEBHOOK_URL_LENGTH, webhookUrlPolicy } from "./webhook-endpoints.server";

const production = webhookUrlPolicy({ NODE_ENV: "production" });
const local = webhookUrlPolicy({ NODE_ENV: "development" });

describe("webhook URLs", () => {
  it("accepts https anywhere public", () => {
    expect(checkWebhookUrl(" https://hooks.example.com/sheetmeter?x=1 ", production)).toEqual({
      ok: true,
      url: "https://hooks.example.com/sheetmeter?x=1",
    });
  });

  it("refuses plain http, loopback hosts and credentials in production", () => {
    expect(checkWebhookUrl("http://hooks.example.com/", production)).toMatchObject({ ok: false, error: /https/ });
    expect(checkWebhookUrl("http://127.0.0.1:9000/", production)).toMatchObject({ ok: false, error: /cannot reach/ });
    expect(checkWebhookUrl("https://localhost/", production)).toMatchObject({ ok: false });
    expect(checkWebhookUrl("https://user:pw@hooks.example.com/", production)).toMatchObject({
      ok: false,
      error: /user name and password/,
    });
  });

  it("refuses what is not a URL, other schemes and overlong URLs", () => {
    expect(checkWebhookUrl("", production)).toMatchObject({ ok: false, error: /Enter the URL/ });
    expect(checkWebhookUrl("hooks.example.com", production)).toMatchObject({ ok: false, error: /full URL/ });
    expect(checkWebhookUrl("ftp://hooks.example.com/", production)).toMatchObject({ ok: false });
    expect(checkWebhookUrl("javascript:alert(1)", local)).toMatchObject({ ok: false });
    const long = `https://hooks.example.com/${"a".repeat(MAX_WEBHOOK_URL_LENGTH)}`;
    expect(checkWebhookUrl(long, production)).toMatchObject({ ok: false, error: /at most 2048/ });
  });

  it("allows http to this machine only locally, or under the loopback escape hatch", () => {
    expect(checkWebhookUrl("http://127.0.0.1:9000/hook", local)).toMatchObject({ ok: true });
    expect(checkWebhookUrl("http://localhost:9000/hook", local)).toMatchObject({ ok: true });
    expect(checkWebhookUrl("http://hooks.example.com/", local)).toMatchObject({ ok: false });

    const loopback = {
      NODE_ENV: "production" as const,
      SHEETMETER_ALLOW_INSECURE_LOCAL: "1",
      DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/x",
      APP_URL: "http://127.0.0.1:3000",
      UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
      QSTASH_URL: "http://127.0.0.1:8080",
    };
    expect(checkWebhookUrl("http://127.0.0.1:9000/", webhookUrlPolicy(loopback))).toMatchObject({ ok: true });
    // One URL off this machine and the hatch is closed, as it is for the app's own URLs.
    const reachable = webhookUrlPolicy({ ...loopback, APP_URL: "http://app.example.com" });
    expect(checkWebhookUrl("http://127.0.0.1:9000/", reachable)).toMatchObject({ ok: false });
  });
});
