// A data table and a cursor pager.
import type { ComponentChildren } from "preact";

/** One column: its heading and how a row shows in it. */
export interface Column<T> {
  title: string;
  cell: (row: T) => ComponentChildren;
  class?: string;
}

/** Rows in a table that scrolls sideways on a narrow screen. */
export function Table<T>({
  rows,
  columns,
  rowKey,
  empty = "Nothing here.",
  label,
  stack = false,
}: {
  rows: T[];
  columns: Column<T>[];
  rowKey: (r: T) => string | number;
  empty?: string;
  label: string;
  /** On a phone, each row as a card of "title: value" lines instead of a table that scrolls sideways. */
  stack?: boolean;
}) {
  if (rows.length === 0) return <p class="empty">{empty}</p>;
  return (
    <div class={stack ? "table-wrap stack" : "table-wrap"} role="region" aria-label={label} tabIndex={0}>
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.title} scope="col" class={c.class}>
                {c.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)}>
              {columns.map((c) => (
                <td key={c.title} class={c.class} data-title={c.title}>
                  {/* One child: a stacked row's cell is a grid of title and value. */}
                  <div>{c.cell(r)}</div>
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Cursor pages: back to the first, and on to the next while there is one. */
export function Pager({ cursor, next, onPage }: { cursor: string | null; next: string | null | undefined; onPage: (c: string | null) => void }) {
  if (!cursor && !next) return null;
  return (
    <nav class="pager" aria-label="Pages">
      <button type="button" disabled={!cursor} onClick={() => onPage(null)}>
        First page
      </button>
      <button type="button" disabled={!next} onClick={() => next && onPage(next)}>
        Next page
      </button>
    </nav>
  );
}

/** A time as the admin's locale writes it, with the exact value on hover. */
export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span class="muted">—</span>;
  const d = new Date(at);
  return <time dateTime={at} title={at}>{d.toLocaleString()}</time>;
}
