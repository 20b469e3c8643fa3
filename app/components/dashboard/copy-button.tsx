import { useEffect, useState } from "react";
import { useHydrated } from "./use-hydrated";

/** Copies `text`; rendered only once hydrated, since without JavaScript it could not do anything. */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const hydrated = useHydrated();
  const [copied, setCopied] = useState(false);
  useEffect(() => {
    if (!copied) return;
    const timer = setTimeout(() => setCopied(false), 2000);
    return () => clearTimeout(timer);
  }, [copied]);
  if (!hydrated) return null;
  return (
    <button
      type="button"
      aria-label={label}
      onClick={() => {
        // Clipboard access can be refused (insecure origin, permissions); the text stays selectable then.
        navigator.clipboard?.writeText(text).then(() => setCopied(true), () => {});
      }}
      className="shrink-0 rounded border border-slate-300 bg-white px-2 py-1 text-xs font-medium text-slate-800 hover:bg-slate-100 focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600"
    >
      <span aria-live="polite">{copied ? "Copied" : "Copy"}</span>
    </button>
  );
}
