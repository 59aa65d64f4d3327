import { useEffect, useRef, useState } from "react";
import type { AspectScores, AspectWeights } from "../lib/api";
import {
  ASPECT_LABELS,
  PRESETS,
  WEIGHT_STEP,
  available,
  presetOf,
  presetWeights,
  sendable,
  sliderValues,
  validWeights,
  type Aspect,
  type Weights,
} from "../lib/aspects";

export const DEBOUNCE_MS = 250;

interface Props {
  /** The weights searched with (from the URL); null: the catalog's default blend. */
  weights: AspectWeights | null;
  /** The default blend as the server resolved it, to place the sliders on "Balanced". */
  defaults?: AspectScores | null;
  /** Whether the catalog has a texture part (else no texture slider, no "Same pattern"). */
  hasTexture: boolean;
  onChange: (weights: AspectWeights | null) => void;
  debounceMs?: number;
}

/** What "looks alike" means for this search: presets, and a slider per aspect whose
 * changes apply once the hand rests (debounced). */
export function AspectControls({ weights, defaults, hasTexture, onChange, debounceMs = DEBOUNCE_MS }: Props) {
  const [draft, setDraft] = useState<Weights | null>(null); // moved, not yet applied
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  const shown = draft ?? sliderValues(weights, defaults);
  // On "Balanced" before any answer told the blend, the sliders' places are a guess.
  const known = draft !== null || weights !== null || Boolean(defaults);
  const text = (aspect: Aspect) => (known ? shown[aspect].toFixed(2) : "auto");
  const active = draft ? undefined : presetOf(weights, hasTexture);
  const invalid = draft !== null && !validWeights(draft, hasTexture);

  const slide = (aspect: Aspect, value: number) => {
    const next = { ...shown, [aspect]: value };
    setDraft(next);
    clearTimeout(timer.current);
    if (!validWeights(next, hasTexture)) return; // the server refuses all zeros: wait
    timer.current = setTimeout(() => {
      setDraft(null);
      onChange(sendable(next, hasTexture));
    }, debounceMs);
  };

  const choose = (preset: (typeof PRESETS)[number]) => {
    clearTimeout(timer.current);
    setDraft(null);
    onChange(presetWeights(preset, hasTexture));
  };

  return (
    <fieldset className="aspects">
      <legend>Look alike in</legend>
      <div className="presets" role="group" aria-label="Presets">
        {PRESETS.filter((p) => hasTexture || !p.needsTexture).map((p) => (
          <button
            key={p.name}
            type="button"
            className={p === active ? "preset active" : "preset"}
            aria-pressed={p === active}
            onClick={() => choose(p)}
          >
            {p.name}
          </button>
        ))}
      </div>
      <div className="sliders">
        {available(hasTexture).map((aspect) => (
          <label key={aspect} className="slider">
            <span>{ASPECT_LABELS[aspect]}</span>
            <input
              type="range"
              min={0}
              max={1}
              step={WEIGHT_STEP}
              value={shown[aspect]}
              aria-label={`${ASPECT_LABELS[aspect]} weight`}
              aria-valuetext={known ? text(aspect) : "catalog default"}
              onChange={(e) => slide(aspect, Number(e.target.value))}
            />
            <output aria-hidden="true">{text(aspect)}</output>
          </label>
        ))}
      </div>
      {invalid && (
        <p className="hint" role="status">
          Give at least one aspect some weight.
        </p>
      )}
    </fieldset>
  );
}
