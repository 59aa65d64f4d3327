import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { checkPhoto } from "./photo";

const TIFF_HEAD = [0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0];

describe("checkPhoto", () => {
  const decode = vi.fn();
  beforeEach(() => vi.stubGlobal("createImageBitmap", decode));
  afterEach(() => {
    vi.unstubAllGlobals();
    decode.mockReset();
  });

  it("accepts what the browser decodes, and frees the decoded picture", async () => {
    const close = vi.fn();
    decode.mockResolvedValue({ close });
    expect(await checkPhoto(new File(["jpeg bytes"], "shoe.jpg"))).toEqual({ ok: true, viewable: true });
    expect(close).toHaveBeenCalled();
  });

  it("names a file that does not decode, whatever its name or type says", async () => {
    decode.mockRejectedValue(new DOMException("The source image could not be decoded."));
    const text = new File(["just text"], "notes.jpg", { type: "image/jpeg" });
    expect(await checkPhoto(text)).toEqual({
      ok: false,
      problem: "“notes.jpg” is not an image: it cannot be read as a photo.",
    });
  });

  it("takes a TIFF the browser cannot show, to be searched without a preview", async () => {
    decode.mockRejectedValue(new DOMException("The source image could not be decoded."));
    const tiff = new File([new Uint8Array(TIFF_HEAD)], "scan.tif", { type: "image/tiff" });
    expect(await checkPhoto(tiff)).toEqual({ ok: true, viewable: false });
  });

  it("refuses an empty file without decoding it", async () => {
    expect(await checkPhoto(new File([], "empty.jpg"))).toEqual({ ok: false, problem: "“empty.jpg” is empty." });
    expect(decode).not.toHaveBeenCalled();
  });
});
