import { Form, useNavigation } from "@remix-run/react";
import { useId } from "react";
import { FormError } from "~/components/forms";

/** What the upload and replace forms accept; the server decides by the file name's extension, not this. */
export const SHEET_FILE_ACCEPT =
  ".csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

const fileInput =
  "mt-1 block w-full text-sm text-slate-700 file:mr-3 file:rounded file:border-0 file:bg-indigo-50 file:px-3 file:py-2 file:text-sm file:font-medium file:text-indigo-800 hover:file:bg-indigo-100";
const textInput =
  "mt-1 block w-full rounded border border-slate-300 bg-white px-3 py-2 text-base shadow-sm focus:border-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-600";

/** The optional worksheet name of an XLSX upload; shared by the upload and replace forms. */
export function WorksheetField({ id }: { id: string }) {
  return (
    <div>
      <label htmlFor={id} className="block text-sm font-medium text-slate-800">
        Worksheet <span className="font-normal text-slate-500">(XLSX only, optional: the first one by default)</span>
      </label>
      <input id={id} name="worksheet" type="text" maxLength={100} className={textInput} />
    </div>
  );
}

/**
 * "Replace data…" for one sheet: a new CSV or XLSX file swaps its rows (and columns) in one step, keeping the sheet's
 * id, endpoint and keys. Behind a <details> so it takes no room until asked for, and works without JavaScript.
 * `error` is the refusal of the last attempt on this sheet; the form stays open to show it.
 */
export function ReplaceDataForm({ sheetId, name, error }: { sheetId: string; name: string; error?: string }) {
  const id = useId();
  const navigation = useNavigation();
  const replacing =
    navigation.state === "submitting" &&
    navigation.formData?.get("intent") === "replace" &&
    navigation.formData?.get("sheetId") === sheetId;
  return (
    // Open, it takes a line of its own so the form never widens the card past a phone's screen.
    <details
      className="shrink-0 open:w-full open:basis-full"
      open={error ? true : undefined}
      data-testid={`replace-${sheetId}`}
    >
      <summary className="inline-block cursor-pointer list-none rounded border border-slate-300 px-3 py-1.5 text-center text-sm hover:bg-slate-100">
        Replace data…
      </summary>
      <Form
        method="post"
        encType="multipart/form-data"
        className="mt-2 w-full max-w-md space-y-3 rounded border border-slate-200 bg-slate-50 p-3 text-sm"
      >
        <input type="hidden" name="intent" value="replace" />
        <input type="hidden" name="sheetId" value={sheetId} />
        <p className="text-slate-700">
          Swap the rows of “{name}” for a new file. The endpoint and API keys stay the same; callers get the new rows
          from their next call. Columns may change.
        </p>
        <div>
          <label htmlFor={`${id}-file`} className="block text-sm font-medium text-slate-800">
            Replacement file (CSV or XLSX)
          </label>
          <input id={`${id}-file`} name="file" type="file" accept={SHEET_FILE_ACCEPT} required className={fileInput} />
        </div>
        <WorksheetField id={`${id}-worksheet`} />
        <FormError message={error} />
        <button
          type="submit"
          disabled={replacing}
          className="rounded bg-indigo-700 px-3 py-1.5 font-medium text-white hover:bg-indigo-800 disabled:opacity-60"
        >
          {replacing ? "Replacing…" : "Replace data"}
        </button>
      </Form>
    </details>
  );
}
