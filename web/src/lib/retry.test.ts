import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { retryOnceUnlessClientError } from "./retry";

describe("retryOnceUnlessClientError", () => {
  it("never retries a 4xx", () => {
    expect(retryOnceUnlessClientError(0, new ApiError(404, "unknown product"))).toBe(false);
    expect(retryOnceUnlessClientError(0, new ApiError(422, "bad k"))).toBe(false);
  });
  it("retries a server or network error once", () => {
    expect(retryOnceUnlessClientError(0, new ApiError(503, "busy"))).toBe(true);
    expect(retryOnceUnlessClientError(0, new TypeError("Failed to fetch"))).toBe(true);
    expect(retryOnceUnlessClientError(1, new ApiError(500, "boom"))).toBe(false);
  });
});
