import { MAX_MARKS } from "../lib/api";
import { NO_MARKS, isFull, markCount, markOf, type Mark, type Marks } from "../lib/marks";

/** A thumb (Material Design's "thumb up", Apache 2.0), pointing down for "less". */
function Thumb({ down = false }: { down?: boolean }) {
  return (
    <svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false" className={down ? "down" : undefined}>
      <path d="M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z" />
    </svg>
  );
}

const LABELS: Record<Mark, string> = { more: "More like this", less: "Less like this" };

interface ButtonsProps {
  sku: string;
  /** What the product is called, to name the buttons. */
  name: string;
  marks: Marks;
  onMark: (sku: string, mark: Mark) => void;
}

/** A result card's thumb up ("more like this") and thumb down ("less like this"): pressed
 * when marked, a second press undoes the mark; no new mark once MAX_MARKS are given. */
export function MarkButtons({ sku, name, marks, onMark }: ButtonsProps) {
  const current = markOf(marks, sku);
  const full = current === undefined && isFull(marks);
  return (
    <div className="mark-buttons" role="group" aria-label={`Mark ${name}`}>
      {(["more", "less"] as const).map((mark) => (
        <button
          key={mark}
          type="button"
          className={`mark ${mark}`}
          aria-pressed={current === mark}
          aria-label={`${LABELS[mark]} (${name})`}
          title={full ? `At most ${MAX_MARKS} marks` : LABELS[mark]}
          disabled={full}
          onClick={() => onMark(sku, mark)}
        >
          <Thumb down={mark === "less"} />
        </button>
      ))}
    </div>
  );
}

/** What is marked, in one compact row: how many "more like this", the hidden ("less
 * like this") products with an undo, and a way to clear every mark. */
export function MarkBar({ marks, onChange }: { marks: Marks; onChange: (marks: Marks) => void }) {
  const count = markCount(marks);
  if (count === 0) return null;
  const hidden = marks.less.length;
  return (
    <div className="marks" role="group" aria-label="Your marks">
      {marks.more.length > 0 && <span>More like: {marks.more.length}</span>}
      {hidden > 0 && (
        <span>
          Hidden: {hidden} (
          <button
            type="button"
            className="link"
            aria-label={`Undo: show the ${hidden === 1 ? "hidden product" : `${hidden} hidden products`} again`}
            onClick={() => onChange({ ...marks, less: [] })}
          >
            undo
          </button>
          )
        </span>
      )}
      <button type="button" className="secondary small" onClick={() => onChange(NO_MARKS)}>
        Clear marks ({count})
      </button>
      {isFull(marks) && (
        <span className="hint" role="status">
          At most {MAX_MARKS} marks: undo one to mark another.
        </span>
      )}
    </div>
  );
}
