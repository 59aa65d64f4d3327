// Per-query aspect weights (shape, colour, texture) and how results compare in each: pure
// helpers, unit-tested in aspects.test.ts.
import type { AspectScores, AspectWeights } from "./api";

export type Aspect = keyof AspectWeights & keyof AspectScores;
export const ASPECTS: readonly Aspect[] = ["shape", "colour", "texture"];
export const ASPECT_LABELS: Record<Aspect, string> = { shape: "Shape", colour: "Colour", texture: "Texture" };
/** The sliders' step; their bounds are the server's, 0..1. */
export const WEIGHT_STEP = 0.05;

export type Weights = Record<Aspect, number>;

export interface Preset {
  name: string;
  /** null: send no weights (the catalog's default blend). */
  weights: Weights | null;
  /** Only offered when the catalog has a texture part. */
  needsTexture?: boolean;
}

export const PRESETS: readonly Preset[] = [
  { name: "Balanced", weights: null },
  { name: "Same style", weights: { shape: 1, colour: 0, texture: 0 } },
  { name: "Same colour", weights: { shape: 0, colour: 1, texture: 0 } },
  { name: "Same pattern", weights: { shape: 0.2, colour: 0, texture: 1 }, needsTexture: true },
];

/** The aspects a catalog can weigh: texture only when it was embedded with it. */
export const available = (hasTexture: boolean): Aspect[] =>
  ASPECTS.filter((a) => a !== "texture" || hasTexture);

const clampWeight = (v: number) => Math.min(1, Math.max(0, v));

/** The weights in a page's URL (?shape=..&colour=..&texture=..), or null when none is
 * there (the default blend). Values that are not numbers are ignored; others are
 * clamped to 0..1. */
export function readWeights(params: URLSearchParams): AspectWeights | null {
  const out: AspectWeights = {};
  for (const aspect of ASPECTS) {
    const text = params.get(aspect);
    if (text === null || text.trim() === "") continue;
    const value = Number(text);
    if (Number.isFinite(value)) out[aspect] = clampWeight(value);
  }
  return Object.keys(out).length ? out : null;
}

/** ``params`` with the weights set (or, for null, removed); other parameters stay. */
export function writeWeights(params: URLSearchParams, weights: AspectWeights | null): URLSearchParams {
  const next = new URLSearchParams(params);
  for (const aspect of ASPECTS) {
    const value = weights?.[aspect];
    if (value === undefined || value === null) next.delete(aspect);
    else next.set(aspect, String(roundWeight(value)));
  }
  return next;
}

/** A weight on the sliders' grid (0.05), without floating-point dust. */
export const roundWeight = (v: number) => Number((Math.round(clampWeight(v) / WEIGHT_STEP) * WEIGHT_STEP).toFixed(2));

/** What to send: the weights the catalog can use (texture dropped when it has none), or
 * null for the default blend. */
export function sendable(weights: AspectWeights | null, hasTexture: boolean): AspectWeights | null {
  if (!weights) return null;
  const out: AspectWeights = {};
  for (const aspect of available(hasTexture)) {
    const value = weights[aspect];
    if (value !== undefined && value !== null) out[aspect] = value;
  }
  return Object.keys(out).length ? out : null;
}

/** False when every aspect the catalog has is weighed 0 (the server refuses that). */
export function validWeights(weights: AspectWeights | null, hasTexture: boolean): boolean {
  if (!weights) return true;
  const aspects = available(hasTexture);
  return aspects.some((a) => weights[a] === undefined || weights[a] === null || (weights[a] ?? 0) > 0);
}

/** The preset these weights are, if any (compared on the aspects the catalog has). */
export function presetOf(weights: AspectWeights | null, hasTexture: boolean): Preset | undefined {
  return PRESETS.find((p) => {
    if (!p.weights || !weights) return p.weights === weights;
    if (p.needsTexture && !hasTexture) return false;
    return available(hasTexture).every((a) => weights[a] === p.weights![a]);
  });
}

/** A preset's weights for this catalog (texture left out when it has none). */
export const presetWeights = (preset: Preset, hasTexture: boolean): AspectWeights | null =>
  sendable(preset.weights, hasTexture);

/** The sliders' positions: the weights given, else ``defaults`` (the default blend as
 * the server resolved it), else halfway (the blend is not known yet). */
export function sliderValues(weights: AspectWeights | null, defaults: AspectScores | null | undefined): Weights {
  const out = {} as Weights;
  for (const aspect of ASPECTS) {
    const value = weights ? (weights[aspect] ?? defaults?.[aspect] ?? 0) : (defaults?.[aspect] ?? 0.5);
    out[aspect] = roundWeight(value);
  }
  return out;
}

/** A similarity shown as a bar: a cosine clamped to 0..1 (below 0 is "not alike"). */
export const barValue = (v: number | null | undefined) => clampWeight(v ?? 0);

/** Whether any of these answers says its catalog has a texture part; undefined when none
 * says anything about aspects. */
export function textureIn(scores: (AspectScores | null | undefined)[]): boolean | undefined {
  const known = scores.filter((s): s is AspectScores => Boolean(s));
  if (known.length === 0) return undefined;
  return known.some((s) => s.texture !== undefined && s.texture !== null);
}

export const percent = (share: number) => `${Math.round(share * 100)}%`;
