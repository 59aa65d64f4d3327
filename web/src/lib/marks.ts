// The shopper's "more like this" / "less like this" marks: pure helpers, unit-tested in
// marks.test.ts. In a page's URL they are repeated parameters (?more=a&more=b&less=c), so
// that any SKU, commas included, reads back the same.
import { MAX_MARKS, type Feedback } from "./api";

export type Mark = "more" | "less";
export interface Marks {
  /** SKUs to see more like (sent as positive). */
  more: string[];
  /** SKUs to see less like (sent as negative; the server hides them). */
  less: string[];
}

export const NO_MARKS: Marks = { more: [], less: [] };

export const markCount = (marks: Marks) => marks.more.length + marks.less.length;

export const isFull = (marks: Marks) => markCount(marks) >= MAX_MARKS;

/** The mark on a product, if any. */
export function markOf(marks: Marks, sku: string): Mark | undefined {
  if (marks.more.includes(sku)) return "more";
  if (marks.less.includes(sku)) return "less";
  return undefined;
}

/** The marks in a page's URL: each SKU once (the first mark wins), at most MAX_MARKS. */
export function readMarks(params: URLSearchParams): Marks {
  const seen = new Set<string>();
  const out: Marks = { more: [], less: [] };
  for (const mark of ["more", "less"] as const) {
    for (const sku of params.getAll(mark)) {
      if (sku === "" || seen.has(sku) || seen.size >= MAX_MARKS) continue;
      seen.add(sku);
      out[mark].push(sku);
    }
  }
  return out;
}

/** ``params`` with these marks (none: the parameters removed); others stay. */
export function writeMarks(params: URLSearchParams, marks: Marks): URLSearchParams {
  const next = new URLSearchParams(params);
  next.delete("more");
  next.delete("less");
  for (const mark of ["more", "less"] as const) for (const sku of marks[mark]) next.append(mark, sku);
  return next;
}

/** A click on a card's mark button: the same mark again undoes it, the other mark is
 * replaced, and a new mark is refused (the marks come back unchanged) once MAX_MARKS are
 * given. */
export function toggleMark(marks: Marks, sku: string, mark: Mark): Marks {
  const current = markOf(marks, sku);
  const without: Marks = { more: marks.more.filter((s) => s !== sku), less: marks.less.filter((s) => s !== sku) };
  if (current === mark) return without;
  if (current === undefined && isFull(marks)) return marks;
  return { ...without, [mark]: [...without[mark], sku] };
}

/** What to send: positive and negative SKUs; null when nothing is marked. */
export function feedback(marks: Marks): Feedback | null {
  if (markCount(marks) === 0) return null;
  return { positive: marks.more, negative: marks.less };
}

/** The results without those marked "less like this" (the server leaves them out too;
 * this hides them at once, while the new answer is on its way). */
export function withoutHidden<T extends { product: { sku: string } }>(items: T[], marks: Marks): T[] {
  if (marks.less.length === 0) return items;
  const hidden = new Set(marks.less);
  return items.filter((item) => !hidden.has(item.product.sku));
}
