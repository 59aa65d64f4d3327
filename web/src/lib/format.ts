// Small pure helpers (unit-tested in format.test.ts).
import type { Crop } from "./api";

export function formatPrice(price?: number | null, currency?: string | null): string {
  if (price === null || price === undefined) return "";
  if (currency && /^[A-Z]{3}$/.test(currency)) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(price);
    } catch {
      /* unknown currency code: fall through */
    }
  }
  return `${price.toFixed(2)}${currency ? ` ${currency}` : ""}`;
}

/** A crop drawn on the displayed image (percent of it) in the image's own pixels. */
export function toPixelCrop(
  percent: { x: number; y: number; width: number; height: number },
  naturalWidth: number,
  naturalHeight: number,
): Crop | null {
  if (percent.width <= 0 || percent.height <= 0) return null;
  const x = Math.max(0, Math.round((percent.x / 100) * naturalWidth));
  const y = Math.max(0, Math.round((percent.y / 100) * naturalHeight));
  const w = Math.min(naturalWidth - x, Math.round((percent.width / 100) * naturalWidth));
  const h = Math.min(naturalHeight - y, Math.round((percent.height / 100) * naturalHeight));
  if (w < 8 || h < 8) return null; // too small to mean anything: search the whole photo
  if (x === 0 && y === 0 && w === naturalWidth && h === naturalHeight) return null;
  return { x, y, w, h };
}

export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024;

/** Why a chosen file is too large or empty to search, or null. (Whether it is an image at
 * all is decided by decoding it: photo.ts. Its type says only what its name ends in.) */
export function fileProblem(file: File): string | null {
  if (file.size > MAX_UPLOAD_BYTES) return `“${file.name}” is larger than 25 MB.`;
  if (file.size === 0) return `“${file.name}” is empty.`;
  return null;
}
