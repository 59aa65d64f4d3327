import { describe, expect, it } from "vitest";
import { fileProblem, formatPrice, toPixelCrop } from "./format";

describe("toPixelCrop", () => {
  it("converts a percent crop to image pixels", () => {
    expect(toPixelCrop({ x: 10, y: 20, width: 50, height: 25 }, 400, 800)).toEqual({ x: 40, y: 160, w: 200, h: 200 });
  });
  it("clips to the image and ignores empty or whole-image crops", () => {
    expect(toPixelCrop({ x: 90, y: 90, width: 20, height: 20 }, 100, 100)).toEqual({ x: 90, y: 90, w: 10, h: 10 });
    expect(toPixelCrop({ x: 0, y: 0, width: 0, height: 0 }, 100, 100)).toBeNull();
    expect(toPixelCrop({ x: 0, y: 0, width: 100, height: 100 }, 100, 100)).toBeNull();
    expect(toPixelCrop({ x: 0, y: 0, width: 2, height: 2 }, 100, 100)).toBeNull();
  });
});

describe("formatPrice", () => {
  it("formats known currencies and falls back for others", () => {
    expect(formatPrice(12.5, "EUR")).toMatch(/12[.,]50/);
    expect(formatPrice(3, "pts")).toBe("3.00 pts");
    expect(formatPrice(null, "EUR")).toBe("");
  });
});

describe("fileProblem", () => {
  it("refuses empty and huge files, by name", () => {
    expect(fileProblem(new File([], "a.jpg", { type: "image/jpeg" }))).toBe("“a.jpg” is empty.");
    expect(fileProblem(new File([new Uint8Array(25 * 2 ** 20 + 1)], "b.jpg"))).toMatch(/“b.jpg” is larger/);
    expect(fileProblem(new File(["x"], "a.jpg", { type: "image/jpeg" }))).toBeNull();
  });
});
