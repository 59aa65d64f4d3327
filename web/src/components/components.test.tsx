import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Product } from "../lib/api";
import { AspectControls } from "./AspectControls";
import { AspectBars, Swatches, WhyButton, matchText } from "./Aspects";
import { DuplicateGroups } from "./DuplicateGroups";
import { ImagePicker } from "./ImagePicker";
import { MarkBar } from "./Marks";
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

  it("folds the other listings of a result's photo, to be opened and followed", async () => {
    render(
      <MemoryRouter>
        <ProductGrid
          items={[
            { product: product("a1"), score: 0.9, listings: [product("a1-copy"), { ...product("a1/m"), price: null }] },
            { product: product("b2"), score: 0.8, listings: [] },
          ]}
          empty="none"
        />
      </MemoryRouter>,
    );
    const [first, second] = screen.getAllByTestId("product-card");
    expect(first).toHaveTextContent("3 listings of this photo");
    expect(second).not.toHaveTextContent("listings");
    const others = screen.getByRole("list", { name: "Other listings of this photo of Product a1" });
    expect(others).not.toBeVisible(); // folded until asked
    await userEvent.click(screen.getByText("3 listings of this photo"));
    expect(others).toBeVisible();
    const links = screen.getAllByTestId("listing").map((l) => l.querySelector("a"));
    expect(links.map((a) => a?.getAttribute("href"))).toEqual(["/products/a1-copy", "/products/a1%2Fm"]);
    expect(links[0]).toHaveTextContent("Product a1-copy");
    expect(links[0]).toHaveTextContent("a1-copy");
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

describe("aspects on result cards", () => {
  it("shows a labelled bar per aspect the catalog has, negative cosines as 0", () => {
    render(<AspectBars aspects={{ shape: 0.83, colour: -0.2, texture: null }} numbers />);
    const bars = screen.getAllByRole("meter");
    expect(bars).toHaveLength(2); // no texture part: no texture bar
    expect(screen.getByRole("meter", { name: "Shape similarity" })).toHaveAttribute("aria-valuenow", "0.83");
    expect(screen.getByRole("meter", { name: "Colour similarity" })).toHaveAttribute("aria-valuetext", "0.00");
    expect(screen.getByText("0.83")).toBeInTheDocument();
  });

  it("shows colours as chips named by hex and share", () => {
    render(<Swatches colours={[{ hex: "#cc2828", share: 0.625 }, { hex: "#ffffff", share: 0.2 }]} label="Colours" />);
    const chips = screen.getAllByRole("img");
    expect(chips[0]).toHaveAttribute("title", "#cc2828 · 63%");
    expect(chips[1]).toHaveAccessibleName("#ffffff, 20%");
    expect(screen.getByRole("list", { name: "Colours" })).toBeInTheDocument();
  });

  it("explains a result on tap or keyboard, and closes on Escape", async () => {
    render(
      <WhyButton
        title="Red shoe"
        queryColours={[{ hex: "#112233", share: 1 }]}
        result={{
          score: 0.9,
          match: "exact",
          inliers: 42,
          aspects: { shape: 0.9, colour: 0.7, texture: 0.4 },
          colours: [{ hex: "#cc2828", share: 1 }],
        }}
      />,
    );
    const button = screen.getByRole("button", { name: "Why? (Red shoe)" });
    expect(button).toHaveAttribute("aria-expanded", "false");
    await userEvent.click(button);
    const pop = screen.getByRole("region", { name: "Why Red shoe" });
    expect(button).toHaveAttribute("aria-expanded", "true");
    expect(pop).toHaveTextContent("Exact match (42 matching details)");
    expect(screen.getByRole("list", { name: "Colours of your photo" })).toBeInTheDocument();
    expect(screen.getByRole("list", { name: "Colours of this product" })).toBeInTheDocument();
    expect(screen.getAllByRole("meter")).toHaveLength(3);
    expect(pop).toHaveTextContent("0.40");
    await userEvent.keyboard("{Escape}");
    expect(screen.queryByRole("region")).not.toBeInTheDocument();
    button.focus();
    await userEvent.keyboard("{Enter}");
    expect(screen.getByRole("region", { name: "Why Red shoe" })).toBeInTheDocument();
    await userEvent.click(document.body); // a tap elsewhere
    expect(screen.queryByRole("region")).not.toBeInTheDocument();
  });

  it("says how a result matched", () => {
    expect(matchText("similar", null)).toBe("Similar look-alike");
    expect(matchText("similar", 7)).toBe("Similar look-alike (7 matching details)");
    expect(matchText(undefined, undefined)).toBe("Similar look-alike");
  });

  it("puts bars, swatches and a Why? button on search results only", () => {
    render(
      <MemoryRouter>
        <ProductGrid
          items={[
            {
              product: product("a1"),
              score: 0.8,
              aspects: { shape: 0.8, colour: 0.6 },
              colours: [{ hex: "#cc2828", share: 1 }],
            },
            { product: product("b2") },
          ]}
          empty="none"
        />
      </MemoryRouter>,
    );
    const [result, browsed] = screen.getAllByTestId("product-card");
    expect(result.querySelectorAll("[role=meter]")).toHaveLength(2);
    expect(result.querySelector("[title='#cc2828 · 100%']")).not.toBeNull();
    expect(result.querySelector("button")).toHaveTextContent("Why?");
    expect(browsed.querySelector("[role=meter], button, .swatches")).toBeNull();
  });
});

describe("AspectControls", () => {
  afterEach(() => vi.useRealTimers());

  it("applies presets at once and slider moves once they rest", () => {
    vi.useFakeTimers();
    const onChange = vi.fn();
    const { rerender } = render(
      <AspectControls weights={null} defaults={{ shape: 0.9091, colour: 0.0909 }} hasTexture={false} onChange={onChange} />,
    );
    expect(screen.queryByLabelText("Texture weight")).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Same pattern" })).not.toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Balanced" })).toHaveAttribute("aria-pressed", "true");
    expect(screen.getByLabelText("Shape weight")).toHaveValue("0.9");

    fireEvent.click(screen.getByRole("button", { name: "Same colour" }));
    expect(onChange).toHaveBeenLastCalledWith({ shape: 0, colour: 1 });
    rerender(<AspectControls weights={{ shape: 0, colour: 1 }} hasTexture={false} onChange={onChange} />);
    expect(screen.getByRole("button", { name: "Same colour" })).toHaveAttribute("aria-pressed", "true");

    onChange.mockClear();
    fireEvent.change(screen.getByLabelText("Shape weight"), { target: { value: "0.3" } });
    fireEvent.change(screen.getByLabelText("Shape weight"), { target: { value: "0.5" } });
    expect(screen.getByLabelText("Shape weight")).toHaveValue("0.5");
    act(() => vi.advanceTimersByTime(200));
    expect(onChange).not.toHaveBeenCalled();
    act(() => vi.advanceTimersByTime(100));
    expect(onChange).toHaveBeenCalledTimes(1);
    expect(onChange).toHaveBeenLastCalledWith({ shape: 0.5, colour: 1 });
  });

  it("offers texture when the catalog has it, and never applies all zeros", () => {
    vi.useFakeTimers();
    const onChange = vi.fn();
    const { rerender } = render(<AspectControls weights={null} hasTexture onChange={onChange} />);
    expect(screen.getByLabelText("Shape weight")).toHaveAttribute("aria-valuetext", "catalog default");
    rerender(<AspectControls weights={{ shape: 0, colour: 1, texture: 0 }} hasTexture onChange={onChange} />);
    expect(screen.getByLabelText("Texture weight")).toHaveValue("0");
    fireEvent.click(screen.getByRole("button", { name: "Same pattern" }));
    expect(onChange).toHaveBeenLastCalledWith({ shape: 0.2, colour: 0, texture: 1 });
    onChange.mockClear();
    fireEvent.change(screen.getByLabelText("Colour weight"), { target: { value: "0" } });
    act(() => vi.advanceTimersByTime(1000));
    expect(onChange).not.toHaveBeenCalled();
    expect(screen.getByRole("status")).toHaveTextContent("at least one aspect");
  });
});

describe("marks on result cards", () => {
  it("show a pressed thumb for a marked product and pass clicks on", async () => {
    const onMark = vi.fn();
    render(
      <MemoryRouter>
        <ProductGrid
          items={[{ product: product("a1"), score: 0.8 }, { product: product("b2"), score: 0.7 }]}
          marking={{ marks: { more: ["a1"], less: [] }, onMark }}
          empty="none"
        />
      </MemoryRouter>,
    );
    expect(screen.getByRole("button", { name: "More like this (Product a1)" })).toHaveAttribute("aria-pressed", "true");
    expect(screen.getByRole("button", { name: "Less like this (Product a1)" })).toHaveAttribute("aria-pressed", "false");
    screen.getByRole("button", { name: "Less like this (Product b2)" }).focus();
    await userEvent.keyboard("{Enter}");
    expect(onMark).toHaveBeenCalledWith("b2", "less");
  });

  it("sums the marks up, undoes the hidden ones and clears them all", async () => {
    const onChange = vi.fn();
    const { rerender } = render(<MarkBar marks={{ more: [], less: [] }} onChange={onChange} />);
    expect(screen.queryByRole("group")).not.toBeInTheDocument();
    rerender(<MarkBar marks={{ more: ["a"], less: ["b", "c"] }} onChange={onChange} />);
    expect(screen.getByRole("group", { name: "Your marks" })).toHaveTextContent("More like: 1Hidden: 2 (undo)Clear marks (3)");
    await userEvent.click(screen.getByRole("button", { name: "Undo: show the 2 hidden products again" }));
    expect(onChange).toHaveBeenLastCalledWith({ more: ["a"], less: [] });
    await userEvent.click(screen.getByRole("button", { name: "Clear marks (3)" }));
    expect(onChange).toHaveBeenLastCalledWith({ more: [], less: [] });
  });
});

describe("DuplicateGroups", () => {
  const groups = [
    { similarity: 0.9731, identical: false, products: [product("a1"), product("a1-copy")] },
    { similarity: 1, identical: true, products: [product("b/2"), product("b3"), product("b4")] },
  ];

  it("shows each group's products side by side, how alike, with links to them", () => {
    render(
      <MemoryRouter>
        <DuplicateGroups groups={groups} onDelete={() => {}} deleting={null} />
      </MemoryRouter>,
    );
    const shown = screen.getAllByTestId("duplicate-group");
    expect(shown).toHaveLength(2);
    expect(shown[0]).toHaveTextContent("97% alike · 2 products");
    expect(shown[1]).toHaveTextContent("Identical files · 3 products");
    expect(screen.getAllByTestId("duplicate-card")).toHaveLength(5);
    expect(screen.getAllByRole("img")[0]).toHaveAttribute("src", "/api/v1/images/a1?size=thumb");
    expect(screen.getAllByRole("link", { name: "Open" })[2]).toHaveAttribute("href", "/products/b%2F2");
  });

  it("deletes only after a second click on the same product", async () => {
    const onDelete = vi.fn();
    render(
      <MemoryRouter>
        <DuplicateGroups groups={groups} onDelete={onDelete} deleting={null} />
      </MemoryRouter>,
    );
    await userEvent.click(screen.getByRole("button", { name: "Delete a1-copy" }));
    expect(onDelete).not.toHaveBeenCalled();
    await userEvent.click(screen.getByRole("button", { name: "Really delete a1-copy" }));
    expect(onDelete).toHaveBeenCalledWith("a1-copy");
    expect(screen.getByRole("button", { name: "Delete a1-copy" })).toBeInTheDocument();
  });
});
