import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { useEffect, useRef } from "react";
import { z } from "zod";
import { Field, FormError, primaryButton } from "~/components/forms";
import { PageHeader } from "~/components/app-shell";
import { ConfirmDelete } from "~/components/confirm-delete";
import { CopyButton } from "~/components/copy-button";
import { EmptyState } from "~/components/empty-state";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { createApiKey, listApiKeys, revokeApiKey } from "~/models/api-keys.server";
import { MAX_KEY_NAME_LENGTH } from "~/utils/api-key-shape";
import { keyCallsThisMonth } from "~/models/key-usage.server";
import { listNewestSheets } from "~/models/sheets.server";
import { getDb } from "~/utils/db.server";
import { withDatabaseOutagePage } from "~/utils/database-outage.server";
import { curlCommand, sheetEndpoint, USAGE_API_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";
import { formatCount, formatDateTime } from "~/utils/format";
import { getRedis } from "~/utils/redis.server";
import { requireUser } from "~/auth/session-user.server";
import { readPageForm } from "~/utils/request-guard.server";

export const meta: MetaFunction = () => [{ title: "API keys · Sheetmeter" }];

export function loader({ request }: LoaderFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const user = await requireUser(request);
    const db = getDb();
    const [keys, newest] = await Promise.all([listApiKeys(db, user.id), listNewestSheets(db, user.id, 1)]);
    const firstSheet = newest.sheets[0];
    // Live from Redis, else the last sync's counts (keyCallsThisMonth never fails for Redis alone).
    const { counts } = await keyCallsThisMonth(
      { redis: getRedis(), db },
      user.id,
      keys.map((key) => key.id),
    );
    const appUrl = getEnv().APP_URL;
    return {
      // Where a new key's ready-to-run command points: the newest sheet (the one the dashboard's guide names), or
      // the usage endpoint before there is any sheet, so the command works either way.
      tryIt: firstSheet
        ? { sheetName: firstSheet.name, url: sheetEndpoint(appUrl, firstSheet.id) }
        : { sheetName: null, url: `${appUrl}${USAGE_API_PATH}` },
      keys: keys.map((key) => ({
        callsThisMonth: counts.get(key.id) ?? 0,
        id: key.id,
        name: key.name,
        prefix: key.prefix,
        createdAt: formatDateTime(key.createdAt),
        lastUsedAt: key.lastUsedAt && formatDateTime(key.lastUsedAt),
        revokedAt: key.revokedAt && formatDateTime(key.revokedAt),
      })),
    };
  });
}

const nameSchema = z
  .string({ error: "Name the key." })
  .trim()
  .min(1, "Name the key, e.g. after the app that will use it.")
  .max(MAX_KEY_NAME_LENGTH, `Use at most ${MAX_KEY_NAME_LENGTH} characters.`);

type ActionData =
  | { intent: "create"; created: { name: string; key: string } }
  | { intent: "create"; error: string }
  | { intent: "revoke"; error?: string };

export function action({ request }: ActionFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const user = await requireUser(request);
    const form = await readPageForm(request);
    const intent = form.get("intent");
    if (intent === "create") {
      const name = nameSchema.safeParse(form.get("name") ?? "");
      if (!name.success) {
        return data<ActionData>({ intent: "create", error: name.error.issues[0].message }, { status: 400 });
      }
      // The full key travels back once, in this response only; it is never stored or put in a URL.
      const { key } = await createApiKey(getDb(), user.id, name.data);
      return data<ActionData>({ intent: "create", created: { name: name.data, key } });
    }
    if (intent === "revoke") {
      // Revoking writes Redis before Postgres; with either store unreachable (each bounded by its deadline) the key
      // stays live, and the customer is told so instead of meeting a 500.
      const found = await revokeApiKey(getRedis(), getDb(), user.id, String(form.get("keyId") ?? "")).catch(
        (error: unknown) => {
          console.error("keys: revoking failed:", error);
          return undefined;
        },
      );
      if (found === undefined) {
        const error = "We can't revoke keys right now, and this key still works; try again in a minute.";
        return data<ActionData>({ intent: "revoke", error }, { status: 503, headers: { "Retry-After": "60" } });
      }
      if (!found) return data<ActionData>({ intent: "revoke", error: "That key does not exist." }, { status: 404 });
      return data<ActionData>({ intent: "revoke" });
    }
    return data<ActionData>({ intent: "create", error: "Unknown action." }, { status: 400 });
  });
}

export default function KeysPage() {
  const { keys, tryIt } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  const navigation = useNavigation();
  const creating = navigation.state === "submitting" && navigation.formData?.get("intent") === "create";
  const formRef = useRef<HTMLFormElement>(null);
  const created = actionData && "created" in actionData ? actionData.created : null;

  useEffect(() => {
    if (created) formRef.current?.reset();
  }, [created]);

  return (
    <div className="space-y-8">
      <PageHeader
        title="API keys"
        description={
          <>
            Send a key as <code className="rounded bg-slate-100 px-1 text-sm">Authorization: Bearer sm_live_…</code> to
            call your{" "}
            <Link to="/sheets" className="font-medium text-indigo-700 underline">
              sheets
            </Link>
            . Every call counts against your monthly quota.
          </>
        }
      />

      {created ? <NewKey name={created.name} apiKey={created.key} tryIt={tryIt} /> : null}

      <section
        aria-labelledby="create-heading"
        className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-6"
      >
        <h2 id="create-heading" className="text-lg font-semibold">
          Create a key
        </h2>
        <Form ref={formRef} method="post" className="mt-4 flex flex-col gap-3 sm:flex-row sm:items-end" noValidate>
          <input type="hidden" name="intent" value="create" />
          <div className="sm:flex-1">
            <Field
              label="Name"
              name="name"
              required
              maxLength={MAX_KEY_NAME_LENGTH}
              placeholder="e.g. Website, Zapier, staging"
              error={
                actionData && "error" in actionData && actionData.intent === "create" ? actionData.error : undefined
              }
            />
          </div>
          <button type="submit" className={primaryButton} disabled={creating}>
            {creating ? "Creating…" : "Create key"}
          </button>
        </Form>
      </section>

      <section aria-labelledby="keys-heading">
        <h2 id="keys-heading" className="text-lg font-semibold">
          Your keys
        </h2>
        {actionData?.intent === "revoke" && actionData.error ? (
          <div className="mt-3">
            <FormError message={actionData.error} />
          </div>
        ) : null}
        {keys.length === 0 ? (
          <EmptyState
            iconPaths={
              <>
                <circle cx="8" cy="15" r="4" />
                <path d="M11 12l9-9M16 7l3 3M14 9l2 2" />
              </>
            }
            title="No API keys yet"
          >
            Create one above, one per app or environment, so you can revoke one without breaking the others.
          </EmptyState>
        ) : (
          <ul className="mt-3 divide-y divide-slate-200 rounded-lg border border-slate-200 bg-white shadow-sm">
            {keys.map((key) => (
              <li key={key.id} className="flex flex-col gap-2 p-4 sm:flex-row sm:items-center sm:justify-between">
                <div className="min-w-0">
                  <p className="flex flex-wrap items-center gap-2">
                    <span className="break-words font-medium">{key.name}</span>
                    {key.revokedAt ? (
                      <span className="rounded bg-slate-200 px-1.5 py-0.5 text-xs font-medium text-slate-700">
                        Revoked
                      </span>
                    ) : (
                      <span className="rounded bg-green-100 px-1.5 py-0.5 text-xs font-medium text-green-800">
                        Active
                      </span>
                    )}
                  </p>
                  <p className="mt-1 font-mono text-sm text-slate-700">{key.prefix}…</p>
                  <p className="mt-1 text-sm text-slate-800" data-testid="key-calls-this-month">
                    <span className="font-medium tabular-nums">{formatCount(key.callsThisMonth)}</span>{" "}
                    {key.callsThisMonth === 1 ? "call" : "calls"} this month
                  </p>
                  <p className="mt-1 text-xs text-slate-600">
                    Created {key.createdAt} · {key.lastUsedAt ? `Last used ${key.lastUsedAt}` : "Never used"}
                    {key.revokedAt ? ` · Revoked ${key.revokedAt}` : ""}
                  </p>
                </div>
                {key.revokedAt ? null : <RevokeKey keyId={key.id} name={key.name} />}
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function NewKey({
  name,
  apiKey,
  tryIt,
}: {
  name: string;
  apiKey: string;
  tryIt: { sheetName: string | null; url: string };
}) {
  const curl = curlCommand(tryIt.url, apiKey);
  return (
    <section
      role="status"
      aria-labelledby="new-key-heading"
      className="rounded-lg border border-amber-300 bg-amber-50 p-4 sm:p-6"
    >
      <h2 id="new-key-heading" className="text-lg font-semibold text-amber-950">
        Your new key “{name}”
      </h2>
      <p className="mt-1 text-sm text-amber-900">
        Copy it now and keep it somewhere safe. It is shown only this once; we store only a hash of it.
      </p>
      <div className="mt-3 flex items-center gap-2">
        <code
          data-testid="new-api-key"
          className="min-w-0 flex-1 break-all rounded bg-white px-2 py-1.5 font-mono text-sm text-slate-900"
        >
          {apiKey}
        </code>
        <CopyButton text={apiKey}>Copy key</CopyButton>
      </div>
      <h3 className="mt-4 text-sm font-semibold text-amber-950">Try it now</h3>
      <p className="mt-1 text-sm text-amber-900">
        {tryIt.sheetName ? (
          <>
            Paste this into a terminal to get the rows of “{tryIt.sheetName}”. It counts as one call against your quota.
          </>
        ) : (
          <>
            Paste this into a terminal to see your quota (it counts nothing).{" "}
            <Link to="/sheets" className="font-medium underline">
              Upload a sheet
            </Link>{" "}
            to get an endpoint with rows.
          </>
        )}
      </p>
      <div className="mt-2 flex items-start gap-2">
        <pre className="min-w-0 flex-1 whitespace-pre-wrap break-all rounded bg-slate-900 px-3 py-2 text-xs text-slate-50">
          <code data-testid="new-key-curl">{curl}</code>
        </pre>
        <CopyButton text={curl} label="Copy the curl command">
          Copy
        </CopyButton>
      </div>
    </section>
  );
}

function RevokeKey({ keyId, name }: { keyId: string; name: string }) {
  return (
    <ConfirmDelete summary="Revoke…" submitLabel="Revoke key" fields={{ intent: "revoke", keyId }}>
      Revoke “{name}”? Calls with it fail within a second. This cannot be undone.
    </ConfirmDelete>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
