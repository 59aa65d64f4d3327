import { skipToken, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import ReactCrop, { type PercentCrop } from "react-image-crop";
import "react-image-crop/dist/ReactCrop.css";
import { useSearchParams } from "react-router-dom";
import { AspectControls } from "../components/AspectControls";
import { Swatches } from "../components/Aspects";
import { FilterBar } from "../components/FilterBar";
import { ImagePicker, type Picked } from "../components/ImagePicker";
import { ProductGrid } from "../components/ProductGrid";
import {
  ApiError,
  DEFAULT_K,
  MAX_K,
  isExpiredQuery,
  searchAgain,
  searchByFile,
  searchByUrl,
  type AspectScores,
  type AspectWeights,
  type Crop,
  type Filters,
  type SearchResponse,
} from "../lib/api";
import { readWeights, sendable, writeWeights } from "../lib/aspects";
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
 * the filters or the aspect weights or ask for more, and it runs again (with the photo
 * the server kept, query_id, unless the crop changed or the server forgot it). */
export function SearchPage() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => readFilters(params), [params]);
  const weights = useMemo(() => readWeights(params), [params]);
  const [hasTexture, setHasTexture] = useState(true); // until an answer says otherwise
  const [blend, setBlend] = useState<AspectScores | null>(null); // the default, as resolved
  const sent = useMemo(() => sendable(weights, hasTexture), [weights, hasTexture]);
  // The server's id of each photo (and crop) searched, to search it again without upload.
  const queryIds = useRef(new Map<string, string>());
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
    queryKey: ["search", pick?.id, region, filters, k, sent],
    queryFn: photo
      ? async (): Promise<SearchResponse> => {
          const key = JSON.stringify([pick.id, region]);
          const known = queryIds.current.get(key);
          if (known) {
            try {
              return await searchAgain(known, sent, k, filters);
            } catch (error) {
              if (!isExpiredQuery(error)) throw error;
              queryIds.current.delete(key); // forgotten: send the photo again
            }
          }
          const answer = await (photo.kind === "url"
            ? searchByUrl(photo.url, k, filters, sent)
            : searchByFile(photo.file, region, k, filters, sent));
          queryIds.current.set(key, answer.query.id);
          return answer;
        }
      : skipToken,
    // The same question gets the same answer: no repeat on window focus.
    staleTime: Infinity,
    // While a new crop, filter or k is searched, the photo's last results stay in view.
    placeholderData: (previous, query) => (query?.queryKey[1] === pick?.id ? previous : undefined),
  });

  // What an answer tells about the catalog: whether it has texture, and its default blend.
  const { data, isPlaceholderData, error } = search;
  useEffect(() => {
    if (!data || isPlaceholderData) return;
    setHasTexture(data.query.aspects.texture !== undefined && data.query.aspects.texture !== null);
    if (!sent) setBlend(data.query.aspects);
  }, [data, isPlaceholderData, sent]);
  useEffect(() => {
    // A link's texture weight on a catalog without texture: search without it.
    if (error instanceof ApiError && error.code === "aspect_weights" && sent?.texture) setHasTexture(false);
  }, [error, sent]);

  const setFilters = (f: Filters) => {
    const next = new URLSearchParams();
    if (f.category) next.set("category", f.category);
    if (f.min_price !== undefined) next.set("min_price", String(f.min_price));
    if (f.max_price !== undefined) next.set("max_price", String(f.max_price));
    setParams(writeWeights(next, weights), { replace: true });
  };

  const setWeights = (w: AspectWeights | null) => setParams(writeWeights(params, w), { replace: true });

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
            {answer && answer.query.colours.length > 0 && (
              <div className="query-colours">
                <span>Colours in your photo</span>
                <Swatches colours={answer.query.colours} label="Colours of your photo" />
              </div>
            )}
          </div>
          <div className="query-actions">
            <button type="button" className="secondary" onClick={() => choose(null)}>
              Choose another photo
            </button>
            <FilterBar filters={filters} onChange={setFilters} />
            <AspectControls weights={weights} defaults={blend} hasTexture={hasTexture} onChange={setWeights} />
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
            queryColours={answer.query.colours}
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
