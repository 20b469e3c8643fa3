import type { ActionFunctionArgs, LoaderFunctionArgs, MetaFunction } from "@remix-run/node";
import { data, redirect } from "@remix-run/node";
import { Form, Link, useActionData, useLoaderData, useNavigation } from "@remix-run/react";
import { FormError, primaryButton } from "~/components/forms";
import { PageHeader } from "~/components/app-shell";
import { ConfirmDelete } from "~/components/confirm-delete";
import { CopyButton } from "~/components/copy-button";
import { EmptyState } from "~/components/empty-state";
import { GeneralErrorBoundary } from "~/components/error-boundary";
import { HorizontalScroll } from "~/components/horizontal-scroll";
import { ReplaceDataForm, SHEET_FILE_ACCEPT, WorksheetField } from "~/components/sheets/replace-data-form";
import { SheetExamples } from "~/components/sheets/sheet-examples";
import { SheetSourceStatus } from "~/components/sheets/sheet-source-status";
import { UrlSourceForm } from "~/components/sheets/url-source-form";
import { createSheet, MAX_CSV_BYTES, SheetImportError, sheetNameFrom } from "~/models/csv-import.server";
import { parseSheetFile, replaceSheetData, worksheetOption } from "~/models/sheet-data.server";
import { appSheetSourceDeps, deleteSheetWithSource, listSheetSources } from "~/models/sheet-sources.server";
import { firstRowOfEachSheet, listSheets, previewSheetRows } from "~/models/sheets.server";
import {
  handleUrlSourceIntent,
  isUrlSourceIntent,
  summarizeSource,
  type UrlSourceActionData,
} from "~/sheets/url-source-actions.server";
import { getBulkDb, getDb } from "~/utils/db.server";
import { isDatabaseUnavailable, withDatabaseOutagePage } from "~/utils/database-outage.server";
import { SHEET_API_PATH } from "~/utils/endpoints";
import { getEnv } from "~/utils/env.server";
import { getRedis } from "~/utils/redis.server";
import { readPageForm, readUploadForm } from "~/utils/request-guard.server";
import { formatCount, formatDate, formatDateTime } from "~/utils/format";
import type { CellValue } from "~/utils/sheet-cells";
import { requireUser } from "~/auth/session-user.server";

export const meta: MetaFunction = () => [{ title: "Sheets · Sheetmeter" }];

// The multipart body also carries boundaries and the name field; this is the most a 10 MB file can add up to.
const MAX_UPLOAD_BODY_BYTES = MAX_CSV_BYTES + 64 * 1024;
const PREVIEW_ROWS = 20;

/** `?preview=<sheetId>` opens that sheet's first rows under its entry, so previews work without JavaScript. */
export function loader({ request }: LoaderFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const user = await requireUser(request);
    const url = new URL(request.url);
    const db = getDb();
    const [sheets, sources] = await Promise.all([listSheets(db, user.id), listSheetSources(db, user.id)]);
    const previewed = sheets.find((sheet) => sheet.id === url.searchParams.get("preview"));
    // Each sheet's examples show its first row as the sample response.
    const firstRows = await firstRowOfEachSheet(db, sheets);
    return {
      apiBase: `${getEnv().APP_URL}${SHEET_API_PATH}/`,
      sheets: sheets.map((sheet) => ({
        ...sheet,
        createdAt: formatDate(sheet.createdAt),
        firstRow: firstRows.get(sheet.id) ?? null,
        dataUpdatedAt: formatDateTime(sheet.dataUpdatedAt),
      })),
      sources: Object.fromEntries([...sources].map(([sheetId, source]) => [sheetId, summarizeSource(source)])),
      preview: previewed ? { sheetId: previewed.id, rows: await previewSheetRows(db, previewed, PREVIEW_ROWS) } : null,
      justImported: previewed !== undefined && url.searchParams.has("imported"),
      justReplaced: previewed !== undefined && url.searchParams.has("replaced"),
    };
  });
}

/** A refusal; `sheetId` when it belongs to that sheet's "Replace data" form rather than the upload form. */
type ActionData = { error: string; sheetId?: string } | UrlSourceActionData;

export function action({ request }: ActionFunctionArgs) {
  return withDatabaseOutagePage(async () => {
    const user = await requireUser(request);
    const isUpload = request.headers.get("Content-Type")?.startsWith("multipart/form-data") ?? false;
    if (!isUpload) {
      const form = await readPageForm(request);
      const intent = form.get("intent");
      if (isUrlSourceIntent(intent)) return handleUrlSourceIntent(intent, form, user.id);
      if (intent !== "delete") return data<ActionData>({ error: "Unknown action." }, { status: 400 });
      // The API serves sheets from memory behind a version in Redis; deleting bumps it first, so with Redis
      // unreachable nothing is deleted and the customer is told so rather than the sheet staying served. A URL
      // sheet's QStash schedule goes first too, for the same reason.
      const deleted = await deleteSheetWithSource(
        { db: getDb(), redis: getRedis(), qstash: appSheetSourceDeps().qstash },
        { userId: user.id, sheetId: String(form.get("sheetId") ?? "") },
      ).catch((error: unknown) => {
        if (isDatabaseUnavailable(error)) throw error;
        console.error("sheets: deleting failed:", error);
        return undefined;
      });
      if (deleted === undefined) {
        const error = "We can't delete sheets right now, and this sheet is still served; try again in a minute.";
        return data<ActionData>({ error }, { status: 503, headers: { "Retry-After": "60" } });
      }
      return redirect("/sheets");
    }

    const form = await readUploadForm(request, { maxBodyBytes: MAX_UPLOAD_BODY_BYTES, maxFileBytes: MAX_CSV_BYTES });
    if (!form) return data<ActionData>({ error: tooLarge }, { status: 413 });
    const replacing = form.get("intent") === "replace" ? String(form.get("sheetId") ?? "") : undefined;
    const file = form.get("file");
    if (!(file instanceof File) || file.size === 0) {
      return data<ActionData>({ error: "Choose a CSV file or an XLSX workbook.", sheetId: replacing }, { status: 400 });
    }
    try {
      const parsed = await parseSheetFile(
        { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) },
        worksheetOption(form.get("worksheet")),
      );
      // The batched inserts may take longer than a request's statement deadline allows.
      if (replacing !== undefined) {
        const replaced = await replaceSheetData(
          { redis: getRedis(), db: getBulkDb() },
          { sheetId: replacing, userId: user.id, parsed },
        );
        if (!replaced) return data<ActionData>({ error: "This sheet no longer exists." }, { status: 404 });
        return redirect(`/sheets?preview=${replaced.sheetId}&replaced=1`);
      }
      const name = sheetNameFrom(file.name, String(form.get("name") ?? ""));
      const { sheetId } = await createSheet(getBulkDb(), { userId: user.id, name, parsed });
      return redirect(`/sheets?preview=${sheetId}&imported=1`);
    } catch (error) {
      if (error instanceof SheetImportError) {
        return data<ActionData>({ error: error.message, sheetId: replacing }, { status: error.status });
      }
      throw error;
    }
  });
}

const tooLarge = "The file is larger than 10 MB. Split it into smaller files and upload them one by one.";

export default function SheetsPage() {
  const { sheets, sources, apiBase, preview, justImported, justReplaced } = useLoaderData<typeof loader>();
  const actionData = useActionData<typeof action>();
  // Each form shows only its own refusal: the upload's, a sheet's "Replace data", a URL's, or a URL sheet's.
  const fileError = actionData && "error" in actionData ? actionData : undefined;
  const urlError = actionData && "urlError" in actionData ? actionData.urlError : undefined;
  const sheetError = actionData && "sheetError" in actionData ? actionData.sheetError : undefined;
  const navigation = useNavigation();
  const uploading = navigation.state === "submitting" && navigation.formEncType === "multipart/form-data";

  return (
    <div className="space-y-8">
      <PageHeader
        title="Sheets"
        description="Upload a CSV or XLSX file and every row is available as JSON from its own endpoint."
      />

      <section
        aria-labelledby="upload-heading"
        className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm sm:p-6"
      >
        <h2 id="upload-heading" className="text-lg font-semibold">
          Upload a CSV or XLSX file
        </h2>
        <p className="mt-1 text-sm text-slate-600">
          CSV: UTF-8, comma- or semicolon-separated. XLSX: the first worksheet, or the one you name. First row as column
          names. Up to 10 MB and 100,000 rows.
        </p>
        {/* Keyed by the last import so the chosen file and name clear once it has landed. */}
        <Form
          key={justImported ? preview?.sheetId : "upload"}
          method="post"
          encType="multipart/form-data"
          className="mt-4 space-y-4"
        >
          <div>
            <label htmlFor="csv-file" className="block text-sm font-medium text-slate-800">
              CSV file or XLSX workbook
            </label>
            <input
              id="csv-file"
              name="file"
              type="file"
              accept={SHEET_FILE_ACCEPT}
              required
              className="mt-1 block w-full text-sm text-slate-700 file:mr-3 file:rounded file:border-0 file:bg-indigo-50 file:px-3 file:py-2 file:text-sm file:font-medium file:text-indigo-800 hover:file:bg-indigo-100"
            />
          </div>
          <div>
            <label htmlFor="sheet-name" className="block text-sm font-medium text-slate-800">
              Name <span className="font-normal text-slate-500">(optional, defaults to the file name)</span>
            </label>
            <input
              id="sheet-name"
              name="name"
              type="text"
              maxLength={100}
              className="mt-1 block w-full rounded border border-slate-300 bg-white px-3 py-2 text-base shadow-sm focus:border-indigo-600 focus:outline-none focus:ring-2 focus:ring-indigo-600"
            />
          </div>
          <WorksheetField id="upload-worksheet" />
          <FormError message={fileError?.sheetId === undefined ? fileError?.error : undefined} />
          <button type="submit" className={`${primaryButton} w-full sm:w-auto`} disabled={uploading}>
            {uploading ? "Uploading…" : "Upload"}
          </button>
        </Form>
      </section>

      <UrlSourceForm error={urlError} resetKey={justImported ? preview?.sheetId : "url"} />

      <section aria-labelledby="sheets-heading">
        <h2 id="sheets-heading" className="text-lg font-semibold">
          Your sheets
        </h2>
        {sheets.length === 0 ? (
          <EmptyState iconPaths={<path d="M3 5h18v14H3zM3 10h18M3 15h18M9 5v14M15 5v14" />} title="No sheets yet">
            Upload a CSV above. You will get an endpoint URL to call with an{" "}
            <Link to="/keys" className="font-medium text-indigo-700 underline">
              API key
            </Link>
            .
          </EmptyState>
        ) : (
          <ul className="mt-3 space-y-3">
            {sheets.map((sheet) => (
              <li
                key={sheet.id}
                id={`sheet-${sheet.id}`}
                className="rounded-lg border border-slate-200 bg-white p-4 shadow-sm"
              >
                <div className="flex flex-wrap items-baseline justify-between gap-2">
                  <h3 className="min-w-0 break-words text-base font-semibold">{sheet.name}</h3>
                  <p className="text-sm text-slate-600">
                    {formatCount(sheet.rowCount)} {sheet.rowCount === 1 ? "row" : "rows"} · {sheet.columns.length}{" "}
                    {sheet.columns.length === 1 ? "column" : "columns"} · {sheet.createdAt}
                  </p>
                </div>
                <p className="mt-1 text-xs text-slate-500" data-testid="data-updated">
                  Data last changed {sheet.dataUpdatedAt} · version {sheet.version}
                </p>
                <EndpointUrl url={`${apiBase}${sheet.id}`} />
                {sources[sheet.id] ? (
                  <SheetSourceStatus
                    sheetId={sheet.id}
                    source={sources[sheet.id]}
                    error={sheetError?.sheetId === sheet.id ? sheetError.message : undefined}
                  />
                ) : null}
                <SheetExamples
                  sheetName={sheet.name}
                  endpoint={`${apiBase}${sheet.id}`}
                  columns={sheet.columns}
                  firstRow={sheet.firstRow}
                  rowCount={sheet.rowCount}
                />
                <div className="mt-3 flex flex-wrap items-start gap-3">
                  {preview?.sheetId === sheet.id ? (
                    <Link to="/sheets" preventScrollReset className={secondaryButton}>
                      Close preview
                    </Link>
                  ) : (
                    <Link to={`/sheets?preview=${sheet.id}`} preventScrollReset className={secondaryButton}>
                      Preview
                    </Link>
                  )}
                  <ReplaceDataForm
                    sheetId={sheet.id}
                    name={sheet.name}
                    error={fileError?.sheetId === sheet.id ? fileError.error : undefined}
                  />
                  <DeleteSheet sheetId={sheet.id} name={sheet.name} rowCount={sheet.rowCount} />
                </div>
                {preview?.sheetId === sheet.id ? (
                  <SheetPreview
                    columns={sheet.columns}
                    rows={preview.rows}
                    rowCount={sheet.rowCount}
                    justImported={justImported}
                    justReplaced={justReplaced}
                  />
                ) : null}
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

const secondaryButton = "rounded border border-slate-300 px-3 py-1.5 text-sm hover:bg-slate-100";

function SheetPreview({
  columns,
  rows,
  rowCount,
  justImported,
  justReplaced,
}: {
  columns: string[];
  rows: Record<string, CellValue>[];
  rowCount: number;
  justImported: boolean;
  justReplaced: boolean;
}) {
  return (
    <div className="mt-4">
      {justReplaced ? (
        <p role="status" className="mb-3 rounded border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-900">
          Replaced the data: {formatCount(rowCount)} {rowCount === 1 ? "row" : "rows"}. The endpoint and keys are
          unchanged; calls get the new rows from now on.
        </p>
      ) : null}
      {justImported ? (
        <p role="status" className="mb-3 rounded border border-green-200 bg-green-50 px-3 py-2 text-sm text-green-900">
          Imported {formatCount(rowCount)} {rowCount === 1 ? "row" : "rows"}. Call the endpoint above with an{" "}
          <Link to="/keys" className="font-medium underline">
            API key
          </Link>
          .
        </p>
      ) : null}
      {rows.length === 0 ? (
        <p className="text-sm text-slate-600">This sheet has column names but no rows.</p>
      ) : (
        <>
          {/* Wide sheets scroll sideways inside the card instead of widening the page on a phone. */}
          <HorizontalScroll label="First rows of the sheet" className="rounded border border-slate-200">
            <table className="min-w-full divide-y divide-slate-200 text-left text-sm">
              <caption className="sr-only">First rows of the sheet</caption>
              <thead className="bg-slate-50">
                <tr>
                  {columns.map((column) => (
                    <th key={column} scope="col" className="whitespace-nowrap px-3 py-2 font-semibold text-slate-800">
                      {column}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100 bg-white">
                {rows.map((row, i) => (
                  <tr key={i}>
                    {columns.map((column) => (
                      <td key={column} className="max-w-xs truncate whitespace-nowrap px-3 py-1.5 text-slate-700">
                        <Cell value={row[column]} />
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </HorizontalScroll>
          <p className="mt-2 text-xs text-slate-500">
            Showing the first {rows.length} of {formatCount(rowCount)} rows, with the types the API returns.
          </p>
        </>
      )}
    </div>
  );
}

function Cell({ value }: { value: CellValue }) {
  if (value === null) return <span className="text-slate-400">empty</span>;
  if (typeof value === "string") return <>{value}</>;
  // Numbers and booleans in monospace, so a customer sees which values will come back typed.
  return <code className="text-indigo-800">{String(value)}</code>;
}

function EndpointUrl({ url }: { url: string }) {
  return (
    <div className="mt-2 flex items-center gap-2">
      {/* Wrapped, not cut off: on a phone a truncated endpoint hides the sheet id, the part that matters. */}
      <code
        data-testid="sheet-endpoint"
        className="min-w-0 flex-1 break-all rounded bg-slate-100 px-2 py-1 text-xs text-slate-800 sm:text-sm"
      >
        {url}
      </code>
      <CopyButton text={url}>Copy URL</CopyButton>
    </div>
  );
}

function DeleteSheet({ sheetId, name, rowCount }: { sheetId: string; name: string; rowCount: number }) {
  return (
    <ConfirmDelete summary="Delete…" submitLabel="Delete sheet" action="/sheets" fields={{ intent: "delete", sheetId }}>
      Delete “{name}” and its {formatCount(rowCount)} rows? API calls to it will get 404. This cannot be undone.
    </ConfirmDelete>
  );
}

export function ErrorBoundary() {
  return <GeneralErrorBoundary />;
}
