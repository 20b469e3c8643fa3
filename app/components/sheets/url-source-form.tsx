import { Form, useNavigation } from "@remix-run/react";
import { FormError, primaryButton } from "~/components/forms";

const inputClass =
  "mt-1 block w-full rounded border border-slate-300 bg-white px-3 py-2 text-base shadow-sm focus:border-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-600";

export const SCHEDULE_LABELS = {
  hourly: "Every hour",
  daily: "Every day",
  manual: "Only when I click “Refresh now”",
} as const;

/** "Create from URL": a published CSV (a Google Sheet's "Publish to the web → CSV" link) and how often to fetch it. */
export function UrlSourceForm({ error, resetKey }: { error?: string; resetKey?: string }) {
  const navigation = useNavigation();
  const creating = navigation.state === "submitting" && navigation.formData?.get("intent") === "create-from-url";
  return (
    <section
      aria-labelledby="url-source-heading"
      className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-6"
    >
      <h2 id="url-source-heading" className="text-lg font-semibold">
        Create from URL
      </h2>
      <p className="mt-1 text-sm text-slate-600">
        An https:// link to a CSV file, such as a Google Sheet published with File → Share → Publish to web → CSV. We
        fetch it now and then on the schedule you pick; the endpoint stays the same when the data changes.
      </p>
      <Form key={resetKey} method="post" className="mt-4 space-y-4">
        <input type="hidden" name="intent" value="create-from-url" />
        <div>
          <label htmlFor="source-url" className="block text-sm font-medium text-slate-800">
            CSV URL
          </label>
          <input
            id="source-url"
            name="url"
            type="url"
            inputMode="url"
            required
            maxLength={2048}
            placeholder="https://docs.google.com/spreadsheets/d/e/…/pub?output=csv"
            aria-invalid={error ? true : undefined}
            aria-describedby={error ? "url-source-error" : undefined}
            className={inputClass}
          />
        </div>
        <div className="grid gap-4 sm:grid-cols-2">
          <div>
            <label htmlFor="source-schedule" className="block text-sm font-medium text-slate-800">
              Refresh
            </label>
            <select id="source-schedule" name="schedule" defaultValue="daily" className={inputClass}>
              {Object.entries(SCHEDULE_LABELS).map(([value, label]) => (
                <option key={value} value={value}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label htmlFor="source-name" className="block text-sm font-medium text-slate-800">
              Name <span className="font-normal text-slate-500">(optional)</span>
            </label>
            <input id="source-name" name="name" type="text" maxLength={100} className={inputClass} />
          </div>
        </div>
        <div id="url-source-error">
          <FormError message={error} />
        </div>
        <button type="submit" className={`${primaryButton} w-full sm:w-auto`} disabled={creating}>
          {creating ? "Fetching…" : "Create from URL"}
        </button>
      </Form>
    </section>
  );
}
