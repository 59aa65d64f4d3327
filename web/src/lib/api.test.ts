import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, MAX_PHOTOS, getSimilar, searchByFile, searchTogether } from "./api";

describe("marks and several photos in requests", () => {
  const fetch = vi.fn(async () => new Response("[]", { headers: { "Content-Type": "application/json" } }));
  afterEach(() => {
    vi.unstubAllGlobals();
    fetch.mockClear();
  });
  const call = () => (fetch.mock.calls[0] as unknown as [string, RequestInit]) ?? [];

  it("sends marks as repeated query parameters to /similar, and leaves out empty lists", async () => {
    vi.stubGlobal("fetch", fetch);
    await getSimilar("a/1", { colour: 1, positive: ["x", "y,z"], negative: ["w"] });
    expect(call()[0]).toBe("/api/v1/products/a%2F1/similar?colour=1&positive=x&positive=y%2Cz&negative=w");
    fetch.mockClear();
    await getSimilar("b", { positive: [], negative: [] });
    expect(call()[0]).toBe("/api/v1/products/b/similar");
  });

  it("sends marks as repeated form fields with an upload", async () => {
    vi.stubGlobal("fetch", fetch);
    await searchByFile(new File(["photo"], "shoe.jpg"), null, 5, {}, { shape: 1, positive: ["x", "y"], negative: ["w"] });
    const form = call()[1].body as FormData;
    expect(form.getAll("positive")).toEqual(["x", "y"]);
    expect(form.getAll("negative")).toEqual(["w"]);
    expect(form.get("shape")).toBe("1");
  });

  it("names the forgotten photo of several", async () => {
    expect(MAX_PHOTOS).toBe(5);
    const problem = { status: 404, detail: "gone", code: "query_expired", query_id: "q2" };
    vi.stubGlobal("fetch", async () => new Response(JSON.stringify(problem), { status: 404 }));
    const error = await searchTogether(["q1", "q2"], null, 5, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: "query_expired", queryId: "q2", message: "gone" });
  });
});
