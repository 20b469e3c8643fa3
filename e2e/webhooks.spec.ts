import http from "node:http";
import type { AddressInfo } from "node:net";
import { verifyWebhookSignature } from "../app/models/webhook-signature.server";
import { expect, test } from "./fixtures";

/**
 * Usage alerts from /settings, against the built app and the QStash stand-in global-setup started: the customer's
 * receiver is a node:http server in this test, the app publishes to it through QStash, and QStash's callbacks
 * reach the app's delivery-status route, which the page shows.
 */
async function startReceiver() {
  const received: { signature: string; eventId: string; body: string }[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({
      signature: String(req.headers["sheetmeter-signature"]),
      eventId: String(req.headers["sheetmeter-event-id"]),
      body: Buffer.concat(chunks).toString("utf8"),
    });
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/sheetmeter`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test("a customer sets a webhook, sends a test event that arrives signed, and reveals and rotates the secret", async ({
  loggedInPage: page,
  consoleGuard,
}, testInfo) => {
  consoleGuard.allowStatus(400, "an unusable webhook URL is refused with 400 on purpose");
  const receiver = await startReceiver();
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto("/settings");
    const alerts = page.getByRole("region", { name: "Usage alerts" });
    await expect(alerts.getByText("No events sent yet.")).toBeVisible();

    // A URL QStash could not use is refused with a reason.
    await alerts.getByLabel("Webhook URL").fill("ftp://hooks.example.com/x");
    await alerts.getByRole("button", { name: "Save URL" }).click();
    await expect(alerts.getByText("Use an https:// URL")).toBeVisible();

    await alerts.getByLabel("Webhook URL").fill(receiver.url);
    await alerts.getByRole("button", { name: "Save URL" }).click();
    await expect(alerts.getByText("Webhook URL saved.")).toBeVisible();

    // Hidden until asked for; then shown in full.
    const secretText = alerts.getByTestId("webhook-secret");
    await expect(secretText).toContainText("•");
    await alerts.getByRole("button", { name: "Reveal" }).click();
    await expect(secretText).toHaveText(/^whsec_[A-Za-z0-9_-]{43}$/);
    const secret = (await secretText.textContent())!;

    await alerts.getByRole("button", { name: "Send test event" }).click();
    await expect(alerts.getByText("Test event queued")).toBeVisible();
    await expect.poll(() => receiver.received.length).toBe(1);
    const [event] = receiver.received;
    expect(JSON.parse(event.body)).toMatchObject({ type: "webhook.test" });
    expect(verifyWebhookSignature(secret, event.body, event.signature)).toBe(true);

    // The page follows the callback on its own: queued, then delivered with the receiver's status.
    const row = alerts.getByTestId("webhook-deliveries").locator("tbody tr").first();
    await expect(row).toHaveAttribute("data-status", "delivered");
    await expect(row).toContainText("Delivered");
    await expect(row).toContainText("204");
    await testInfo.attach("settings-usage-alerts-desktop", {
      body: await page.screenshot({ fullPage: true, path: "test-results/settings-usage-alerts-desktop.png" }),
      contentType: "image/png",
    });

    // Rotation asks first, then replaces the secret at once.
    await alerts.getByText("Rotate…").click();
    await alerts.getByRole("button", { name: "Rotate secret" }).click();
    await expect(alerts.getByText("Secret rotated.")).toBeVisible();
    // Still revealed, so the new secret is there to copy into the receiver.
    await expect(alerts.getByRole("button", { name: "Hide" })).toBeVisible();
    await expect(secretText).not.toHaveText(secret);
    await expect(secretText).toHaveText(/^whsec_[A-Za-z0-9_-]{43}$/);
    const rotated = (await secretText.textContent())!;
    expect(rotated).not.toBe(secret);

    await alerts.getByRole("button", { name: "Send test event" }).click();
    await expect.poll(() => receiver.received.length).toBe(2);
    const second = receiver.received[1];
    expect(verifyWebhookSignature(rotated, second.body, second.signature)).toBe(true);
    expect(verifyWebhookSignature(secret, second.body, second.signature)).toBe(false);
    await expect(alerts.locator('tbody tr[data-status="delivered"]')).toHaveCount(2);

    // A phone: the section fits the width.
    await page.setViewportSize({ width: 390, height: 844 });
    await expect
      .poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth))
      .toBeLessThanOrEqual(0);
    await testInfo.attach("settings-usage-alerts-phone", {
      body: await page.screenshot({ fullPage: true, path: "test-results/settings-usage-alerts-phone.png" }),
      contentType: "image/png",
    });

    // Removing asks first; the secret goes with the URL.
    await alerts.getByText("Remove…").click();
    await alerts.getByRole("button", { name: "Remove webhook" }).click();
    await expect(alerts.getByText("Webhook removed")).toBeVisible();
    await expect(secretText).toHaveCount(0);
    await expect(alerts.getByRole("button", { name: "Save URL" })).toBeVisible();
  } finally {
    await receiver.close();
  }
});
