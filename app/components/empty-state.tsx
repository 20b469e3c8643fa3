import type { ReactNode } from "react";

/** What a list shows before it has anything in it: an outline icon (24×24 SVG paths), a title and the next step. */
export function EmptyState({
  iconPaths,
  title,
  children,
}: {
  iconPaths: ReactNode;
  title: string;
  children: ReactNode;
}) {
  return (
    <div className="mt-3 rounded-lg border-2 border-dashed border-slate-300 bg-white px-6 py-10 text-center">
      <svg
        aria-hidden="true"
        viewBox="0 0 24 24"
        className="mx-auto h-10 w-10 text-slate-400"
        fill="none"
        stroke="currentColor"
        strokeWidth="1.5"
      >
        {iconPaths}
      </svg>
      <p className="mt-3 font-medium text-slate-900">{title}</p>
      <p className="mt-1 text-sm text-slate-600">{children}</p>
    </div>
  );
}
