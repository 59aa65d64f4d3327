import { skipToken, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import ReactCrop, { type PercentCrop } from "react-image-crop";
import "react-image-crop/dist/ReactCrop.css";
import { useSearchParams } from "react-router-dom";
import { FilterBar } from "../components/FilterBar";
import { ImagePicker, type Picked } from "../components/ImagePicker";
import { ProductGrid } from "../components/ProductGrid";
import { DEFAULT_K, MAX_K, searchByFile, searchByUrl, type Crop, type Filters } from "../lib/api";
import { toPixelCrop } from "../lib/format";

// Numbers the picks for the search's cache key (a File has no identity there); kept for
// the whole session, as the cache is, so a new photo never meets an old photo's results.
let picks = 0;

function readFilters(params: URLSearchParams): Filters {
  const num = (key: string) => (params.get(key) ? Number(params.get(key)) : undefined);
  return {
    category: params.get("category") || undefined,
    min_price: num("min_price"),
    max_price: num("max_price"),
  };
}

/** Search by photo: pick one and the search starts; crop the region of interest, change
 * the filters or ask for more, and it runs again. */
export function SearchPage() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => readFilters(params), [params]);
  const [pick, setPick] = useState<{ id: number; photo: Picked } | null>(null);
  const [crop, setCrop] = useState<PercentCrop | undefined>(); // as drawn, while dragging
  const [region, setRegion] = useState<Crop | null>(null); // as searched: set when a drag ends
  const [k, setK] = useState(DEFAULT_K);
  const image = useRef<HTMLImageElement>(null);
  const photo = pick?.photo;
  const preview = useMemo(
    () => (photo?.kind === "file" ? (photo.viewable ? URL.createObjectURL(photo.file) : undefined) : photo?.url),
    [photo],
  );
  useEffect(() => () => {
    if (photo?.kind === "file" && preview) URL.revokeObjectURL(preview);
  }, [photo, preview]);

  const search = useQuery({
    queryKey: ["search", pick?.id, region, filters, k],
    queryFn: photo
      ? () => (photo.kind === "url" ? searchByUrl(photo.url, k, filters) : searchByFile(photo.file, region, k, filters))
      : skipToken,
    // The same question gets the same answer: no repeat on window focus.
    staleTime: Infinity,
    // While a new crop, filter or k is searched, the photo's last results stay in view.
    placeholderData: (previous, query) => (query?.queryKey[1] === pick?.id ? previous : undefined),
  });

  const setFilters = (f: Filters) => {
    const next = new URLSearchParams();
    if (f.category) next.set("category", f.category);
    if (f.min_price !== undefined) next.set("min_price", String(f.min_price));
    if (f.max_price !== undefined) next.set("max_price", String(f.max_price));
    setParams(next, { replace: true });
  };

  const choose = (p: Picked | null) => {
    setPick(p && { id: ++picks, photo: p });
    setCrop(undefined);
    setRegion(null);
    setK(DEFAULT_K);
  };

  const cropped = (percent: PercentCrop) => {
    const img = image.current;
    setRegion(img ? toPixelCrop(percent, img.naturalWidth, img.naturalHeight) : null);
  };

  const answer = search.data;
  return (
    <section className="search-page">
      <h1>Find products that look alike</h1>
      {!photo && <ImagePicker onPick={choose} />}
      {photo && (
        <div className="query">
          <div className="query-image">
            {photo.kind === "url" ? (
              <img ref={image} src={preview} alt="Your photo" data-testid="query-image" />
            ) : photo.viewable ? (
              <ReactCrop
                crop={crop}
                onChange={(_, percent) => setCrop(percent)}
                onComplete={(_, percent) => cropped(percent)}
                aria-label="Crop the region to search"
              >
                <img ref={image} src={preview} alt="Your photo" data-testid="query-image" />
              </ReactCrop>
            ) : null}
            <p className="hint">{hint(photo, Boolean(crop?.width))}</p>
          </div>
          <div className="query-actions">
            <button type="button" className="secondary" onClick={() => choose(null)}>
              Choose another photo
            </button>
            <FilterBar filters={filters} onChange={setFilters} />
          </div>
        </div>
      )}
      {search.isError && (
        <p role="alert" className="error">
          {search.error.message}{" "}
          <button type="button" className="secondary" onClick={() => search.refetch()}>
            Try again
          </button>
        </p>
      )}
      {search.isFetching && <p className="loading" aria-live="polite">Looking for look-alikes…</p>}
      {answer && (
        <>
          <p className="summary" aria-live="polite">
            {answer.results.length} look-alikes in {answer.took_ms.toFixed(0)} ms
            {answer.query.crop ? " (cropped region)" : ""}
          </p>
          <ProductGrid
            items={answer.results}
            empty="No product matches these filters. Try another category or price range."
          />
          {answer.results.length >= k && k < MAX_K && (
            <button
              type="button"
              className="secondary more"
              disabled={search.isFetching}
              onClick={() => setK(Math.min(k + DEFAULT_K, MAX_K))}
            >
              Show more look-alikes
            </button>
          )}
        </>
      )}
    </section>
  );
}

function hint(photo: Picked, cropping: boolean): string {
  if (photo.kind === "url") return "Image from URL.";
  if (!photo.viewable) return `This browser cannot show “${photo.file.name}”; the whole photo is searched.`;
  return cropping ? "Searching the selected region." : "Drag on the photo to search only part of it (e.g. the shoes).";
}
