import { describe, expect, it } from "vitest";
import { MAX_MARKS } from "./api";
import { NO_MARKS, feedback, isFull, markOf, readMarks, toggleMark, withoutHidden, writeMarks } from "./marks";

const skus = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`);

describe("marks", () => {
  it("are the server's limit", () => expect(MAX_MARKS).toBe(10));

  it("read from and written to the URL as repeated parameters, next to the others", () => {
    expect(readMarks(new URLSearchParams("shape=1"))).toEqual(NO_MARKS);
    const read = readMarks(new URLSearchParams("more=a&more=b%2Cc&less=d&more=&less=a&more=a"));
    expect(read).toEqual({ more: ["a", "b,c"], less: ["d"] }); // each SKU once, the first mark wins
    const params = writeMarks(new URLSearchParams("category=Shoes&more=x&shape=1"), read);
    expect(params.toString()).toBe("category=Shoes&shape=1&more=a&more=b%2Cc&less=d");
    expect(readMarks(params)).toEqual(read);
    expect(writeMarks(params, NO_MARKS).toString()).toBe("category=Shoes&shape=1");
  });

  it("from a URL keep to the limit", () => {
    const params = new URLSearchParams([...skus(8).map((s) => ["more", s]), ...skus(12).map((s) => ["less", `l${s}`])]);
    const read = readMarks(params);
    expect(read.more).toHaveLength(8);
    expect(read.less).toEqual(["ls0", "ls1"]);
    expect(isFull(read)).toBe(true);
  });

  it("toggle: a second press undoes, the other mark replaces, none is added at the limit", () => {
    let marks = toggleMark(NO_MARKS, "a", "more");
    expect(marks).toEqual({ more: ["a"], less: [] });
    expect(markOf(marks, "a")).toBe("more");
    marks = toggleMark(marks, "a", "less");
    expect(marks).toEqual({ more: [], less: ["a"] });
    expect(toggleMark(marks, "a", "less")).toEqual(NO_MARKS);

    const full = { more: skus(MAX_MARKS - 1), less: ["z"] };
    expect(isFull(full)).toBe(true);
    expect(toggleMark(full, "new", "more")).toBe(full);
    expect(toggleMark(full, "z", "more")).toEqual({ more: [...skus(MAX_MARKS - 1), "z"], less: [] }); // switching is fine
    expect(isFull(toggleMark(full, "s0", "more"))).toBe(false);
  });

  it("are sent as positive and negative, and hide the 'less' results at once", () => {
    expect(feedback(NO_MARKS)).toBeNull();
    expect(feedback({ more: ["a"], less: ["b"] })).toEqual({ positive: ["a"], negative: ["b"] });
    const items = ["a", "b", "c"].map((sku) => ({ product: { sku } }));
    expect(withoutHidden(items, { more: ["a"], less: ["b"] }).map((i) => i.product.sku)).toEqual(["a", "c"]);
    expect(withoutHidden(items, NO_MARKS)).toBe(items);
  });
});
