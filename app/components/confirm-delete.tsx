import { Form } from "@remix-run/react";
import type { ReactNode } from "react";

/**
 * A destructive action behind a <details> confirmation: it works without JavaScript, and a stray click cannot
 * delete anything.
 */
export function ConfirmDelete({
  summary,
  submitLabel,
  fields,
  action,
  children,
}: {
  /** The closed control, e.g. "Delete…". */
  summary: string;
  submitLabel: string;
  /** Hidden inputs that say what to delete. */
  fields: Record<string, string>;
  action?: string;
  /** The question, naming what is lost. */
  children: ReactNode;
}) {
  return (
    <details className="shrink-0 self-start">
      {/* Secondary until opened: the destructive red belongs to the confirming button, not to the card's largest
          control. */}
      <summary className="inline-block cursor-pointer list-none rounded border border-slate-300 bg-white px-3 py-1.5 text-center text-sm text-slate-700 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600">
        {summary}
      </summary>
      <Form method="post" action={action} className="mt-2 max-w-xs rounded border border-red-200 bg-red-50 p-3 text-sm">
        {Object.entries(fields).map(([name, value]) => (
          <input key={name} type="hidden" name={name} value={value} />
        ))}
        <p className="text-red-900">{children}</p>
        <button type="submit" className="mt-2 rounded bg-red-700 px-3 py-1.5 font-medium text-white hover:bg-red-800">
          {submitLabel}
        </button>
      </Form>
    </details>
  );
}
