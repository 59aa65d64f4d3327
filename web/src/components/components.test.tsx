import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Product } from "../lib/api";
import { ImagePicker } from "./ImagePicker";
import { ProductGrid } from "./ProductGrid";

const product = (sku: string): Product => ({
  sku,
  title: `Product ${sku}`,
  category: "Shoes",
  price: 19.99,
  currency: "EUR",
  url: null,
  metadata: {},
  image_url: `/api/v1/images/${sku}`,
  thumbnail_url: `/api/v1/images/${sku}?size=thumb`,
  image_width: 300,
  image_height: 400,
});

describe("ImagePicker", () => {
  beforeEach(() => {
    // jsdom decodes no images: "photo" bytes decode, anything else does not.
    vi.stubGlobal("createImageBitmap", async (file: File) => {
      if ((await file.text()) !== "photo") throw new DOMException("cannot decode", "InvalidStateError");
      return { close: () => {} };
    });
  });
  afterEach(() => vi.unstubAllGlobals());

  it("refuses, by name, a file that is not an image whatever it is called, and passes photos on", async () => {
    const onPick = vi.fn();
    render(<ImagePicker onPick={onPick} />);
    const input = screen.getByTestId("file-input");
    await userEvent.upload(input, new File(["hello"], "notes.jpg", { type: "image/jpeg" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("“notes.jpg” is not an image");
    expect(onPick).not.toHaveBeenCalled();
    const photo = new File(["photo"], "shoe.jpg", { type: "image/jpeg" });
    await userEvent.upload(input, photo);
    await waitFor(() => expect(onPick).toHaveBeenCalledWith({ kind: "file", file: photo, viewable: true }));
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
  });

  it("takes an image URL and refuses other schemes", async () => {
    const onPick = vi.fn();
    render(<ImagePicker onPick={onPick} />);
    const field = screen.getByLabelText("Image URL");
    await userEvent.type(field, "ftp://x/y.jpg");
    await userEvent.click(screen.getByText("Use URL"));
    expect(onPick).not.toHaveBeenCalled();
    await userEvent.clear(field);
    await userEvent.type(field, "https://shop.example/a.jpg");
    await userEvent.click(screen.getByText("Use URL"));
    expect(onPick).toHaveBeenCalledWith({ kind: "url", url: "https://shop.example/a.jpg" });
  });
});

describe("ProductGrid", () => {
  it("shows thumbnails with alt text, prices, scores and links", () => {
    render(
      <MemoryRouter>
        <ProductGrid items={[{ product: product("a1"), score: 0.875 }, { product: product("b/2") }]} empty="none" />
      </MemoryRouter>,
    );
    const images = screen.getAllByRole("img");
    expect(images[0]).toHaveAttribute("alt", "Product a1");
    expect(images[0]).toHaveAttribute("src", "/api/v1/images/a1?size=thumb");
    expect(images[0]).toHaveAttribute("loading", "lazy");
    expect(screen.getByText("88% alike")).toBeInTheDocument();
    expect(screen.getAllByRole("link")[1]).toHaveAttribute("href", "/products/b%2F2");
  });

  it("marks the exact match with a badge, and only it", () => {
    render(
      <MemoryRouter>
        <ProductGrid
          items={[
            { product: product("a1"), score: 0.6, match: "exact", inliers: 42 },
            { product: product("b2"), score: 0.7, match: "similar", inliers: 3 },
          ]}
          empty="none"
        />
      </MemoryRouter>,
    );
    const badges = screen.getAllByText("Exact match");
    expect(badges).toHaveLength(1);
    expect(badges[0]).toHaveAttribute("title", "42 details of the photo match this product's image");
    const cards = screen.getAllByTestId("product-card");
    expect(cards[0]).toHaveAttribute("data-match", "exact");
    expect(cards[1]).toHaveAttribute("data-match", "similar");
  });

  it("shows the empty message", () => {
    render(<ProductGrid items={[]} empty="Nothing here." />);
    expect(screen.getByText("Nothing here.")).toBeInTheDocument();
  });
});
