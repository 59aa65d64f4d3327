import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, useLocation } from "react-router-dom";
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

  function Location() {
    return <span data-testid="location">{useLocation().search}</span>;
  }
  const renderPage = () =>
    render(
      <QueryClientProvider client={new QueryClient()}>
        <MemoryRouter>
          <SearchPage />
          <Location />
        </MemoryRouter>
      </QueryClientProvider>,
    );
  const url = () => new URLSearchParams(screen.getByTestId("location").textContent ?? "");
  const cardSkus = () => screen.queryAllByTestId("product-card").map((c) => c.querySelector("a")?.getAttribute("href"));
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

  it("re-ranks with 'more / less like this' marks, hides the 'less' ones, and keeps the marks in the URL", async () => {
    fetch.mockImplementation(async (url: string, init: RequestInit) => {
      if (url === "/api/v1/categories") return json([]);
      const negative: string[] = init.body instanceof FormData ? [] : (JSON.parse(init.body as string).negative ?? []);
      const body = answer(4);
      return json({ ...body, results: body.results.filter((r) => !negative.includes(r.product.sku)) });
    });
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["photo"], "shoe.jpg", { type: "image/jpeg" }));
    await screen.findByText("4 look-alikes in 12 ms");
    expect(screen.queryByRole("group", { name: "Your marks" })).not.toBeInTheDocument();

    const more = screen.getByRole("button", { name: "More like this (p0)" });
    expect(more).toHaveAttribute("aria-pressed", "false");
    await userEvent.click(more);
    await waitFor(() => expect(searches()).toHaveLength(2));
    expect(sentJson(1)).toEqual({ query_id: "q1", k: DEFAULT_K, positive: ["p0"] });
    expect(screen.getByRole("button", { name: "More like this (p0)" })).toHaveAttribute("aria-pressed", "true");

    await userEvent.click(screen.getByRole("button", { name: "Less like this (p2)" }));
    expect(cardSkus()).not.toContain("/products/p2"); // hidden at once
    await waitFor(() => expect(searches()).toHaveLength(3));
    expect(sentJson(2)).toEqual({ query_id: "q1", k: DEFAULT_K, positive: ["p0"], negative: ["p2"] });
    await screen.findByText("3 look-alikes in 12 ms");
    expect(url().getAll("more")).toEqual(["p0"]);
    expect(url().getAll("less")).toEqual(["p2"]);
    const bar = screen.getByRole("group", { name: "Your marks" });
    expect(bar).toHaveTextContent("Hidden: 1 (undo)");

    // Weights keep the marks.
    await userEvent.click(screen.getByRole("button", { name: "Same colour" }));
    await waitFor(() => expect(searches()).toHaveLength(4));
    expect(sentJson(3)).toMatchObject({ positive: ["p0"], negative: ["p2"], colour: 1 });
    expect(url().getAll("less")).toEqual(["p2"]);

    await userEvent.click(screen.getByRole("button", { name: "Undo: show the hidden product again" }));
    await waitFor(() => expect(cardSkus()).toContain("/products/p2"));
    expect(url().getAll("less")).toEqual([]);
    await userEvent.click(screen.getByRole("button", { name: "Clear marks (1)" }));
    await waitFor(() => expect(url().getAll("more")).toEqual([]));
    expect(screen.queryByRole("group", { name: "Your marks" })).not.toBeInTheDocument();

    // A new photo starts afresh: no marks.
    await userEvent.click(screen.getByRole("button", { name: "More like this (p1)" }));
    await waitFor(() => expect(url().getAll("more")).toEqual(["p1"]));
    await userEvent.click(screen.getByRole("button", { name: "Choose another photo" }));
    expect(url().getAll("more")).toEqual([]);
  });

  it("stops marking at the limit, with a hint", async () => {
    fetch.mockImplementation(async (url: string) => (url === "/api/v1/categories" ? json([]) : json(answer(12))));
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["photo"], "shoe.jpg", { type: "image/jpeg" }));
    await screen.findByText("12 look-alikes in 12 ms");
    for (let i = 0; i < 10; i++) await userEvent.click(screen.getByRole("button", { name: `More like this (p${i})` }));
    expect(screen.getByRole("status")).toHaveTextContent("At most 10 marks");
    expect(screen.getByRole("button", { name: "More like this (p10)" })).toBeDisabled();
    expect(screen.getByRole("button", { name: "More like this (p9)" })).toBeEnabled(); // can be undone
    await userEvent.click(screen.getByRole("button", { name: "More like this (p9)" }));
    expect(screen.getByRole("button", { name: "More like this (p10)" })).toBeEnabled();
  });

  it("searches several photos together, each uploaded once, and sends a forgotten one again", async () => {
    let uploads = 0;
    let expire = true;
    fetch.mockImplementation(async (url: string, init: RequestInit) => {
      if (url === "/api/v1/categories") return json([]);
      if (init.body instanceof FormData) return json(answer(Number(init.body.get("k")), 0.1, `u${++uploads}`));
      const body = JSON.parse(init.body as string);
      if (expire && body.query_ids?.includes("u1")) {
        expire = false;
        return new Response(JSON.stringify({ status: 404, detail: "expired", code: "query_expired", query_id: "u1" }), {
          status: 404,
          headers: { "Content-Type": "application/problem+json" },
        });
      }
      const together = answer(2, 0.1, body.query_ids?.[0] ?? body.query_id);
      return json({ ...together, query: { ...together.query, photos: body.query_ids?.length ?? 1 } });
    });
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["photo"], "shoe.jpg", { type: "image/jpeg" }));
    await screen.findByText(`${DEFAULT_K} look-alikes in 12 ms`);
    expect(screen.getByTestId("query-image")).toBeInTheDocument();

    await userEvent.upload(screen.getByTestId("add-photo-input"), new File(["photo"], "back.jpg", { type: "image/jpeg" }));
    await screen.findByText("2 look-alikes in 12 ms (2 photos together)");
    // back.jpg uploaded once (k=1: its own answer is not shown); u1 was forgotten, so
    // shoe.jpg went again, and the search was tried again.
    const files = searches().flatMap(([, init]) => (init.body instanceof FormData ? [(init.body.get("image") as File).name] : []));
    expect(files).toEqual(["shoe.jpg", "back.jpg", "shoe.jpg"]);
    expect(sent(1).get("k")).toBe("1");
    const bodies = searches().flatMap(([, init]) => (typeof init.body === "string" ? [JSON.parse(init.body)] : []));
    expect(bodies).toEqual([
      { query_ids: ["u1", "u2"], k: DEFAULT_K },
      { query_ids: ["u3", "u2"], k: DEFAULT_K },
    ]);
    expect(screen.getAllByTestId("photo-thumb")).toHaveLength(2);
    expect(screen.queryByTestId("query-image")).not.toBeInTheDocument(); // no cropping with several
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();

    const before = searches().length;
    await userEvent.click(screen.getByRole("button", { name: "Remove photo 1" }));
    await screen.findByText("2 look-alikes in 12 ms");
    expect(searches()).toHaveLength(before + 1);
    expect(sentJson(before)).toEqual({ query_id: "u2", k: DEFAULT_K }); // back.jpg alone, not uploaded again
    expect(screen.getByTestId("query-image")).toBeInTheDocument();
  });

  it("names a file that is not an image and sends nothing", async () => {
    renderPage();
    await userEvent.upload(screen.getByTestId("file-input"), new File(["text"], "notes.jpg", { type: "image/jpeg" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("“notes.jpg” is not an image");
    expect(screen.queryByTestId("query-image")).not.toBeInTheDocument();
    expect(searches()).toHaveLength(0);
  });
});
