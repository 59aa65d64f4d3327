import { describe, expect, it } from "vitest";
import {
  PRESETS,
  barValue,
  presetOf,
  presetWeights,
  readWeights,
  roundWeight,
  sendable,
  sliderValues,
  textureIn,
  validWeights,
  writeWeights,
} from "./aspects";

const preset = (name: string) => PRESETS.find((p) => p.name === name)!;

describe("aspect weights", () => {
  it("read from and written to the URL next to the other parameters", () => {
    expect(readWeights(new URLSearchParams("category=Shoes"))).toBeNull();
    expect(readWeights(new URLSearchParams("shape=0&colour=1&texture=x"))).toEqual({ shape: 0, colour: 1 });
    expect(readWeights(new URLSearchParams("shape=7&colour=-1"))).toEqual({ shape: 1, colour: 0 });
    const params = writeWeights(new URLSearchParams("category=Shoes&shape=1"), { colour: 0.30000000000000004, texture: 0 });
    expect(params.toString()).toBe("category=Shoes&colour=0.3&texture=0");
    expect(writeWeights(params, null).toString()).toBe("category=Shoes");
  });

  it("keep to the sliders' grid", () => {
    expect(roundWeight(0.9091)).toBe(0.9);
    expect(roundWeight(0.125)).toBe(0.15);
    expect(roundWeight(2)).toBe(1);
  });

  it("send only what the catalog can weigh, and never all zeros", () => {
    expect(sendable(null, true)).toBeNull();
    expect(sendable({ shape: 0, colour: 1, texture: 0 }, false)).toEqual({ shape: 0, colour: 1 });
    expect(sendable({ texture: 1 }, false)).toBeNull();
    expect(validWeights({ shape: 0, colour: 0, texture: 0 }, true)).toBe(false);
    expect(validWeights({ shape: 0, colour: 0, texture: 0.5 }, false)).toBe(false); // texture does not count
    expect(validWeights({ shape: 0, colour: 0.05 }, false)).toBe(true);
    expect(validWeights({ shape: 0 }, false)).toBe(true); // colour left to the default blend
  });

  it("name the preset a view is in", () => {
    expect(presetOf(null, true)?.name).toBe("Balanced");
    expect(presetOf({ shape: 0, colour: 1, texture: 0 }, true)?.name).toBe("Same colour");
    expect(presetOf({ shape: 0, colour: 1 }, false)?.name).toBe("Same colour");
    expect(presetOf({ shape: 0.2, colour: 0, texture: 1 }, false)).toBeUndefined();
    expect(presetOf({ shape: 0.5, colour: 1, texture: 0 }, true)).toBeUndefined();
    expect(presetWeights(preset("Same style"), false)).toEqual({ shape: 1, colour: 0 });
    expect(presetWeights(preset("Balanced"), true)).toBeNull();
  });

  it("place the sliders on the weights, else on the default blend", () => {
    expect(sliderValues({ shape: 0, colour: 1 }, null)).toEqual({ shape: 0, colour: 1, texture: 0 });
    expect(sliderValues(null, { shape: 0.9091, colour: 0.0909, texture: null })).toEqual({
      shape: 0.9,
      colour: 0.1,
      texture: 0.5,
    });
    expect(sliderValues(null, null)).toEqual({ shape: 0.5, colour: 0.5, texture: 0.5 });
  });

  it("show similarities as bars from 0 to 1", () => {
    expect(barValue(-0.3)).toBe(0);
    expect(barValue(0.42)).toBe(0.42);
    expect(barValue(1.0000002)).toBe(1);
    expect(barValue(null)).toBe(0);
  });

  it("learn from results whether the catalog has texture", () => {
    expect(textureIn([])).toBeUndefined();
    expect(textureIn([null, undefined])).toBeUndefined();
    expect(textureIn([{ shape: 0.5, colour: 0.5, texture: null }])).toBe(false);
    expect(textureIn([{ shape: 0.5, colour: 0.5, texture: 0.1 }])).toBe(true);
  });
});
