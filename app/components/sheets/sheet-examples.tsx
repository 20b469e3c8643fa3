import { Link } from "@remix-run/react";
import { CopyButton } from "~/components/copy-button";
import { HorizontalScroll } from "~/components/horizontal-scroll";
import { curlCommand, KEY_VARIABLE } from "~/utils/endpoints";
import type { CellValue, SheetRowData } from "~/utils/sheet-cells";
import { buildSheetExamples } from "./sheet-examples-data";

/**
 * API examples built from this sheet's own columns and first row, so a customer sees a call that matches their data
 * (`?country=France&sort=population&order=desc`) and what it returns, not a made-up one. Collapsed by default: a
 * page of sheets stays short.
 */
export function SheetExamples({
  sheetName,
  endpoint,
  columns,
  firstRow,
  rowCount,
}: {
  sheetName: string;
  endpoint: string;
  columns: string[];
  firstRow: Record<string, CellValue> | null;
  rowCount: number;
}) {
  const examples = buildSheetExamples({ endpoint, columns, firstRow: firstRow as SheetRowData | null, rowCount });
  return (
    <details className="mt-3 rounded border border-slate-200 text-sm" data-testid="sheet-examples">
      <summary className="cursor-pointer rounded px-3 py-2 font-medium text-indigo-700 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600">
        API examples<span className="sr-only"> for {sheetName}</span>
      </summary>
      <div className="space-y-4 border-t border-slate-200 px-3 py-3">
        <p className="text-slate-700">
          Set <code className="rounded bg-slate-100 px-1 text-xs">{KEY_VARIABLE}</code> to one of your{" "}
          <Link to="/keys" className="font-medium text-indigo-700 underline">
            API keys
          </Link>
          , then run any of these. Each call counts once against your quota. All parameters are in the{" "}
          <Link to="/docs" className="font-medium text-indigo-700 underline">
            API docs
          </Link>
          .
        </p>
        {examples.map((example) => {
          const curl = curlCommand(example.url, `$${KEY_VARIABLE}`);
          return (
            <div key={example.title} data-testid="sheet-example">
              <h4 className="font-medium text-slate-900">{example.title}</h4>
              <div className="mt-1 flex items-start gap-2">
                <pre className="min-w-0 flex-1 whitespace-pre-wrap break-all rounded bg-slate-900 px-3 py-2 text-xs text-slate-50">
                  <code>{curl}</code>
                </pre>
                <CopyButton text={curl} label={`Copy the command: ${example.title}`}>
                  Copy
                </CopyButton>
              </div>
              {example.response ? (
                <>
                  <p className="mt-2 text-xs font-medium text-slate-700">Response</p>
                  <HorizontalScroll label={`Sample response: ${example.title}`} className="mt-1 rounded bg-slate-50">
                    <pre className="px-3 py-2 text-xs text-slate-800">
                      <code>{example.response}</code>
                    </pre>
                  </HorizontalScroll>
                </>
              ) : null}
            </div>
          );
        })}
      </div>
    </details>
  );
}
