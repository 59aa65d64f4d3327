import { useMutation } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import ReactCrop, { type PercentCrop } from "react-image-crop";
import "react-image-crop/dist/ReactCrop.css";
import { useSearchParams } from "react-router-dom";
import { FilterBar } from "../components/FilterBar";
import { ImagePicker, type Picked } from "../components/ImagePicker";
import { ProductGrid } from "../components/ProductGrid";
import { searchByFile, searchByUrl, type Filters } from "../lib/api";
import { toPixelCrop } from "../lib/format";

const K = 24;

function readFilters(params: URLSearchParams): Filters {
  const num = (key: string) => (params.get(key) ? Number(params.get(key)) : undefined);
  return {
    category: params.get("category") || undefined,
    min_price: num("min_price"),
    max_price: num("max_price"),
  };
}

/** Search by photo: pick, optionally crop the region of interest, see look-alikes. */
export function SearchPage() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => readFilters(params), [params]);
  const [picked, setPicked] = useState<Picked | null>(null);
  const [crop, setCrop] = useState<PercentCrop | undefined>();
  const image = useRef<HTMLImageElement>(null);
  const preview = useMemo(
    () => (picked?.kind === "file" ? URL.createObjectURL(picked.file) : picked?.url),
    [picked],
  );
  useEffect(() => () => {
    if (picked?.kind === "file" && preview) URL.revokeObjectURL(preview);
  }, [picked, preview]);

  const search = useMutation({
    mutationFn: async (f: Filters) => {
      if (!picked) throw new Error("no photo");
      if (picked.kind === "url") return searchByUrl(picked.url, K, f);
      const img = image.current;
      const pixels = crop && img ? toPixelCrop(crop, img.naturalWidth, img.naturalHeight) : null;
      return searchByFile(picked.file, pixels, K, f);
    },
  });

  const setFilters = (f: Filters) => {
    const next = new URLSearchParams();
    if (f.category) next.set("category", f.category);
    if (f.min_price !== undefined) next.set("min_price", String(f.min_price));
    if (f.max_price !== undefined) next.set("max_price", String(f.max_price));
    setParams(next, { replace: true });
    if (picked) search.mutate(f);
  };

  const choose = (p: Picked | null) => {
    setPicked(p);
    setCrop(undefined);
    search.reset();
  };

  return (
    <section className="search-page">
      <h1>Find products that look alike</h1>
      {!picked && <ImagePicker onPick={choose} />}
      {picked && (
        <div className="query">
          <div className="query-image">
            {picked.kind === "file" ? (
              <ReactCrop crop={crop} onChange={(_, percent) => setCrop(percent)} aria-label="Crop the region to search">
                <img ref={image} src={preview} alt="Your photo" data-testid="query-image" />
              </ReactCrop>
            ) : (
              <img ref={image} src={preview} alt="Your photo" data-testid="query-image" />
            )}
            <p className="hint">
              {picked.kind === "file"
                ? crop?.width
                  ? "Searching the selected region."
                  : "Drag on the photo to search only part of it (e.g. the shoes)."
                : "Image from URL."}
            </p>
          </div>
          <div className="query-actions">
            <button type="button" onClick={() => search.mutate(filters)} disabled={search.isPending}>
              {search.isPending ? "Searching…" : "Search"}
            </button>
            <button type="button" className="secondary" onClick={() => choose(null)}>
              Choose another photo
            </button>
            <FilterBar filters={filters} onChange={setFilters} />
          </div>
        </div>
      )}
      {search.isError && (
        <p role="alert" className="error">
          {search.error.message}
        </p>
      )}
      {search.isPending && <p className="loading" aria-live="polite">Looking for look-alikes…</p>}
      {search.data && (
        <>
          <p className="summary" aria-live="polite">
            {search.data.results.length} look-alikes in {search.data.took_ms.toFixed(0)} ms
            {search.data.query.crop ? " (cropped region)" : ""}
          </p>
          <ProductGrid
            items={search.data.results}
            empty="No product matches these filters. Try another category or price range."
          />
        </>
      )}
    </section>
  );
}
