import { Client, Receiver } from "@upstash/qstash";
import { getEnv } from "./env.server";

const globalForQstash = globalThis as unknown as { __sheetmeterQstash?: { client: Client; receiver: Receiver } };

function create() {
  const env = getEnv();
  return {
    // devMode false: never let the SDK swap in its own dev-server keys or try to start Upstash's binary.
    client: new Client({ baseUrl: env.QSTASH_URL, token: env.QSTASH_TOKEN, devMode: false, enableTelemetry: false }),
    receiver: new Receiver({
      currentSigningKey: env.QSTASH_CURRENT_SIGNING_KEY,
      nextSigningKey: env.QSTASH_NEXT_SIGNING_KEY,
      devMode: false,
    }),
  };
}

export function getQstash(): Client {
  globalForQstash.__sheetmeterQstash ??= create();
  return globalForQstash.__sheetmeterQstash.client;
}

export function getReceiver(): Receiver {
  globalForQstash.__sheetmeterQstash ??= create();
  return globalForQstash.__sheetmeterQstash.receiver;
}
