import { describe, expect, it } from "vitest";
import { getWebhookEndpoint } from "~/models/webhook-endpoints.server";
import { getDb } from "~/utils/db.server";
import { createTestUser } from "./factories";
import { CLI_TEST_TIMEOUT_MS, runAdmin } from "./helpers/cli";

describe("npm run admin -- user:webhook", { timeout: CLI_TEST_TIMEOUT_MS }, () => {
  it("sets the URL and prints { userId, url, secret } on its last line; a second run keeps the secret", async () => {
    const user = await createTestUser(getDb());
    const first = await runAdmin(["user:webhook", "--user", user.id, "--url", "https://hooks.example.com/a"]);
    expect(first.status).toBe(0);
    expect(first.json).toEqual({
      userId: user.id,
      url: "https://hooks.example.com/a",
      secret: expect.stringMatching(/^whsec_/),
    });
    expect(await getWebhookEndpoint(getDb(), user.id)).toMatchObject({
      url: "https://hooks.example.com/a",
      secret: first.json!.secret,
    });

    const moved = await runAdmin(["user:webhook", "--user", user.id, "--url", "https://hooks.example.com/b"]);
    expect(moved.json).toEqual({ userId: user.id, url: "https://hooks.example.com/b", secret: first.json!.secret });
  });

  it("exits 2 for a URL it refuses and 1 for an unknown user", async () => {
    const user = await createTestUser(getDb());
    const insecure = await runAdmin(["user:webhook", "--user", user.id, "--url", "http://hooks.example.com/"]);
    expect(insecure.status).toBe(2);
    expect(insecure.stderr).toMatch(/--url: Use an https:\/\/ URL/);
    const unknown = await runAdmin(["user:webhook", "--user", "nobody", "--url", "https://hooks.example.com/"]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/No user with id nobody/);
  });
});
