// Is a picked file a photo the search can use? Decided in the browser, at once, so that a
// text file renamed .jpg is refused by name before any upload or broken preview.
import { fileProblem } from "./format";

/** A usable photo (`viewable`: this browser can show it, so it can be previewed and
 * cropped) or why not, naming the file. */
export type PhotoCheck = { ok: true; viewable: boolean } | { ok: false; problem: string };

export async function checkPhoto(file: File): Promise<PhotoCheck> {
  const problem = fileProblem(file);
  if (problem) return { ok: false, problem };
  try {
    (await createImageBitmap(file)).close();
    return { ok: true, viewable: true };
  } catch {
    // TIFF: the server reads it, but most browsers cannot decode it.
    if (isTiff(new Uint8Array(await file.slice(0, 4).arrayBuffer()))) return { ok: true, viewable: false };
    return { ok: false, problem: `“${file.name}” is not an image: it cannot be read as a photo.` };
  }
}

const isTiff = (head: Uint8Array) =>
  head.length === 4 &&
  ((head[0] === 0x49 && head[1] === 0x49 && head[2] === 0x2a && head[3] === 0) || // II*\0
    (head[0] === 0x4d && head[1] === 0x4d && head[2] === 0 && head[3] === 0x2a)); // MM\0*
