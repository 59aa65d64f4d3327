import { useEffect, useId, useRef, useState, type PointerEvent as ReactPointerEvent } from "react";
import type { AspectScores, SearchResult, Swatch } from "../lib/api";
import { ASPECTS, ASPECT_LABELS, barValue, percent } from "../lib/aspects";

/** A bar per aspect the result was compared in: how alike it is (0..1; a negative cosine
 * shows as 0), with the number when ``numbers``. */
export function AspectBars({ aspects, numbers = false }: { aspects: AspectScores; numbers?: boolean }) {
  const shown = ASPECTS.filter((a) => aspects[a] !== undefined && aspects[a] !== null);
  if (shown.length === 0) return null;
  return (
    <div className="aspect-bars">
      {shown.map((aspect) => {
        const value = barValue(aspects[aspect]);
        return (
          <div key={aspect} className="aspect-bar">
            <span className="aspect-name" aria-hidden="true">
              {ASPECT_LABELS[aspect]}
            </span>
            <span
              className="bar"
              role="meter"
              aria-label={`${ASPECT_LABELS[aspect]} similarity`}
              aria-valuemin={0}
              aria-valuemax={1}
              aria-valuenow={value}
              aria-valuetext={value.toFixed(2)}
              title={`${ASPECT_LABELS[aspect]}: ${value.toFixed(2)}`}
            >
              <span className="bar-fill" style={{ width: `${value * 100}%` }} />
            </span>
            {numbers && (
              <span className="aspect-value" aria-hidden="true">
                {value.toFixed(2)}
              </span>
            )}
          </div>
        );
      })}
    </div>
  );
}

/** Dominant colours as small round chips (hover: the hex and its share). */
export function Swatches({ colours, label }: { colours: Swatch[]; label: string }) {
  if (colours.length === 0) return null;
  return (
    <ul className="swatches" aria-label={label}>
      {colours.map(({ hex, share }) => (
        <li key={hex}>
          <span
            className="swatch"
            role="img"
            aria-label={`${hex}, ${percent(share)}`}
            title={`${hex} · ${percent(share)}`}
            style={{ background: hex }}
          />
        </li>
      ))}
    </ul>
  );
}

/** In words, how the result matched: exact (verified by local features) or similar. */
export function matchText(match: SearchResult["match"], inliers: number | null | undefined): string {
  const details = inliers ? ` (${inliers} matching details)` : "";
  return match === "exact" ? `Exact match${details}` : `Similar look-alike${details}`;
}

interface WhyProps {
  result: Partial<SearchResult>;
  title: string;
  /** The query's colours, and what to call the query ("Your photo"). */
  queryColours?: Swatch[];
  queryName?: string;
}

/** "Why?": a button that opens, on hover, tap, Enter or Space, a small popover comparing
 * the query's and the result's colours and the aspect similarities with their numbers.
 * Escape, a second tap or a tap elsewhere closes it. */
export function WhyButton({ result, title, queryColours, queryName = "Your photo" }: WhyProps) {
  const [pinned, setPinned] = useState(false);
  const [hovered, setHovered] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  const id = useId();
  const open = pinned || hovered;

  useEffect(() => {
    if (!pinned) return;
    const away = (e: PointerEvent) => {
      if (!root.current?.contains(e.target as Node)) setPinned(false);
    };
    document.addEventListener("pointerdown", away);
    return () => document.removeEventListener("pointerdown", away);
  }, [pinned]);

  const mouse = (e: ReactPointerEvent, over: boolean) => {
    if (e.pointerType === "mouse") setHovered(over);
  };

  return (
    <div
      className="why"
      ref={root}
      onPointerEnter={(e) => mouse(e, true)}
      onPointerLeave={(e) => mouse(e, false)}
      onKeyDown={(e) => {
        if (e.key === "Escape" && open) {
          setPinned(false);
          setHovered(false);
        }
      }}
    >
      <button
        type="button"
        className="why-button"
        aria-expanded={open}
        aria-controls={id}
        aria-label={`Why? (${title})`}
        onClick={() => setPinned(!pinned)}
      >
        Why?
      </button>
      {open && (
        <div id={id} className="why-pop" role="region" aria-label={`Why ${title}`}>
          <p className="why-match">{matchText(result.match, result.inliers)}</p>
          {result.score !== undefined && <p className="why-score">{(result.score * 100).toFixed(0)}% alike overall</p>}
          {queryColours && queryColours.length > 0 && (
            <div className="why-row">
              <span>{queryName}</span>
              <Swatches colours={queryColours} label={`Colours of ${queryName.toLowerCase()}`} />
            </div>
          )}
          {result.colours && result.colours.length > 0 && (
            <div className="why-row">
              <span>This product</span>
              <Swatches colours={result.colours} label="Colours of this product" />
            </div>
          )}
          {result.aspects && <AspectBars aspects={result.aspects} numbers />}
        </div>
      )}
    </div>
  );
}
