import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_K, type SearchResponse } from "../lib/api";
import { SearchPage } from "./SearchPage";

const answer = (n: number, colour = 0.1, id = "q1"): SearchResponse => ({
  results: Array.from({ length: n }, (_, i) => ({
    score: 0.9,
    aspects: { shape: 0.8, colour: colour === 1 ? 0.99 : 0.5, texture: null },
    colours: [{ hex: "#cc2828", share: 0.6 }],
    product: { sku: `p${i}`, image_url: `/api/v1/images/p${i}`, thumbnail_url: `/api/v1/images/p${i}?size=thumb` },
  })),
  took_ms: 12,
  query: {
    id,
    width: 100,
    height: 100,
    k: n,
    crop: null,
    aspects: { shape: 1 - colour, colour, texture: null },
    colours: [{ hex: "#112233", share: 1 }],
  },
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
  const sentJson = (call: number) => JSON.parse(searches()[call][1].body as string) as Record<string, unknown>;
  const json = (body: unknown) => new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

  it("searches as soon as a photo is picked, and asks for more on request", async () => {
    fetch.mockImplementation(async (url: string, init: RequestInit) => {
      if (url === "/api/v1/categories") return json([]);
      const k = init.body instanceof FormData ? init.body.get("k") : JSON.parse(init.body as string).k;
      return json(answer(Number(k)));
    });
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["photo"], "shoe.jpg", { type: "image/jpeg" }));
    expect(await screen.findByText(`${DEFAULT_K} look-alikes in 12 ms`)).toBeInTheDocument();
    expect(searches()).toHaveLength(1);
    expect((sent(0).get("image") as File).name).toBe("shoe.jpg");
    expect(sent(0).get("k")).toBe(String(DEFAULT_K));
    expect(screen.getByTestId("query-image")).toHaveAttribute("src", "blob:preview");

    await userEvent.click(screen.getByRole("button", { name: "Show more look-alikes" }));
    expect(await screen.findByText(`${2 * DEFAULT_K} look-alikes in 12 ms`)).toBeInTheDocument();
    expect(sentJson(1)).toEqual({ query_id: "q1", k: 2 * DEFAULT_K }); // the photo is not sent again
  });

  it("re-weighs with the kept photo, and sends the photo again once the server forgot it", async () => {
    let forgotten = false;
    fetch.mockImplementation(async (url: string, init: RequestInit) => {
      if (url === "/api/v1/categories") return json([]);
      if (init.body instanceof FormData) return json(answer(3, Number(init.body.get("colour") ?? 0.1), "q2"));
      const body = JSON.parse(init.body as string);
      if (forgotten)
        return new Response(JSON.stringify({ status: 404, detail: "unknown or expired", code: "query_expired" }), {
          status: 404,
          headers: { "Content-Type": "application/problem+json" },
        });
      return json(answer(3, body.colour ?? 0.1, body.query_id));
    });
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["photo"], "shoe.jpg", { type: "image/jpeg" }));
    await screen.findByText("3 look-alikes in 12 ms");
    expect(screen.getByRole("list", { name: "Colours of your photo" })).toBeInTheDocument();
    expect(screen.getAllByRole("meter", { name: "Colour similarity" })[0]).toHaveAttribute("aria-valuenow", "0.5");
    // The catalog has no texture: no texture slider, no "Same pattern".
    expect(screen.queryByLabelText("Texture weight")).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Same pattern" })).not.toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Balanced" })).toHaveAttribute("aria-pressed", "true");

    await userEvent.click(screen.getByRole("button", { name: "Same colour" }));
    await waitFor(() =>
      expect(screen.getAllByRole("meter", { name: "Colour similarity" })[0]).toHaveAttribute("aria-valuenow", "0.99"),
    );
    expect(searches()).toHaveLength(2);
    expect(sentJson(1)).toEqual({ query_id: "q2", k: DEFAULT_K, shape: 0, colour: 1 });
    expect(screen.getByRole("button", { name: "Same colour" })).toHaveAttribute("aria-pressed", "true");

    // Back to the default blend: answered from the cache, nothing is sent.
    await userEvent.click(screen.getByRole("button", { name: "Balanced" }));
    await waitFor(() =>
      expect(screen.getAllByRole("meter", { name: "Colour similarity" })[0]).toHaveAttribute("aria-valuenow", "0.5"),
    );
    expect(searches()).toHaveLength(2);

    forgotten = true;
    await userEvent.click(screen.getByRole("button", { name: "Same style" }));
    await waitFor(() => expect(searches()).toHaveLength(4));
    expect(sentJson(2)).toEqual({ query_id: "q2", k: DEFAULT_K, shape: 1, colour: 0 });
    expect((sent(3).get("image") as File).name).toBe("shoe.jpg"); // sent again, unnoticed
    expect([sent(3).get("shape"), sent(3).get("colour"), sent(3).get("texture")]).toEqual(["1", "0", null]);
    await screen.findByRole("button", { name: "Same style", pressed: true });
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("names a file that is not an image and sends nothing", async () => {
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["text"], "notes.jpg", { type: "image/jpeg" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("“notes.jpg” is not an image");
    expect(screen.queryByTestId("query-image")).not.toBeInTheDocument();
    expect(searches()).toHaveLength(0);
  });
});
