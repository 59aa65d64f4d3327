import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_K, type SearchResponse } from "../lib/api";
import { SearchPage } from "./SearchPage";

const answer = (n: number): SearchResponse => ({
  results: Array.from({ length: n }, (_, i) => ({
    score: 0.9,
    product: { sku: `p${i}`, image_url: `/api/v1/images/p${i}`, thumbnail_url: `/api/v1/images/p${i}?size=thumb` },
  })),
  took_ms: 12,
  query: { crop: null },
});

describe("SearchPage", () => {
  const fetch = vi.fn();
  beforeEach(() => {
    vi.stubGlobal("fetch", fetch);
    vi.stubGlobal("createImageBitmap", async (file: File) => {
      if ((await file.text()) !== "photo") throw new DOMException("cannot decode");
      return { close: () => {} };
    });
    URL.createObjectURL = () => "blob:preview"; // not in jsdom
    URL.revokeObjectURL = () => {};
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    fetch.mockReset();
  });

  const renderPage = () =>
    render(
      <QueryClientProvider client={new QueryClient()}>
        <MemoryRouter>
          <SearchPage />
        </MemoryRouter>
      </QueryClientProvider>,
    );
  const searches = () => fetch.mock.calls.filter(([url]) => url === "/api/v1/search");
  const sent = (call: number) => searches()[call][1].body as FormData;
  const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

  it("searches as soon as a photo is picked, and asks for more on request", async () => {
    fetch.mockImplementation(async (url: string, init: RequestInit) =>
      url === "/api/v1/categories" ? json([]) : json(answer(Number((init.body as FormData).get("k")))),
    );
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["photo"], "shoe.jpg", { type: "image/jpeg" }));
    expect(await screen.findByText(`${DEFAULT_K} look-alikes in 12 ms`)).toBeInTheDocument();
    expect(searches()).toHaveLength(1);
    expect((sent(0).get("image") as File).name).toBe("shoe.jpg");
    expect(sent(0).get("k")).toBe(String(DEFAULT_K));
    expect(screen.getByTestId("query-image")).toHaveAttribute("src", "blob:preview");

    await userEvent.click(screen.getByRole("button", { name: "Show more look-alikes" }));
    expect(await screen.findByText(`${2 * DEFAULT_K} look-alikes in 12 ms`)).toBeInTheDocument();
    expect(sent(1).get("k")).toBe(String(2 * DEFAULT_K));
  });

  it("names a file that is not an image and sends nothing", async () => {
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["text"], "notes.jpg", { type: "image/jpeg" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("“notes.jpg” is not an image");
    expect(screen.queryByTestId("query-image")).not.toBeInTheDocument();
    expect(searches()).toHaveLength(0);
  });
});
