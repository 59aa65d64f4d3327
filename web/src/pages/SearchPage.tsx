import { skipToken, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState } from "react";
import ReactCrop, { type PercentCrop } from "react-image-crop";
import "react-image-crop/dist/ReactCrop.css";
import { useSearchParams } from "react-router-dom";
import { AspectControls } from "../components/AspectControls";
import { Swatches } from "../components/Aspects";
import { FilterBar } from "../components/FilterBar";
import { ImagePicker, type Picked } from "../components/ImagePicker";
import { MarkBar } from "../components/Marks";
import { AddPhoto, PhotoThumb, usePreview } from "../components/Photos";
import { ProductGrid } from "../components/ProductGrid";
import {
  ApiError,
  DEFAULT_K,
  MAX_K,
  MAX_PHOTOS,
  isExpiredQuery,
  searchAgain,
  searchByFile,
  searchByUrl,
  searchTogether,
  type AspectScores,
  type AspectWeights,
  type Crop,
  type Filters,
  type Refine,
  type SearchResponse,
} from "../lib/api";
import { readWeights, sendable, writeWeights } from "../lib/aspects";
import { feedback, readMarks, toggleMark, withoutHidden, writeMarks, type Mark, type Marks } from "../lib/marks";
import { toPixelCrop } from "../lib/format";

// Numbers the picks for the search's cache key (a File has no identity there); kept for
// the whole session, as the cache is, so a new photo never meets an old photo's results.
let picks = 0;

/** A photo of the query, numbered. */
interface QueryPhoto {
  id: number;
  photo: Picked;
}

/** Send a photo: the search's answer, and with it the id the server keeps it under. */
const upload = (photo: Picked, crop: Crop | null, k: number, filters: Filters, refine: Refine | null) =>
  photo.kind === "url" ? searchByUrl(photo.url, k, filters, refine) : searchByFile(photo.file, crop, k, filters, refine);

function readFilters(params: URLSearchParams): Filters {
  const num = (key: string) => (params.get(key) ? Number(params.get(key)) : undefined);
  return {
    category: params.get("category") || undefined,
    min_price: num("min_price"),
    max_price: num("max_price"),
  };
}

/** Search by photo: pick one and the search starts; crop the region of interest, change
 * the filters or the aspect weights, mark results "more / less like this" or ask for
 * more, and it runs again (with the photo the server kept, query_id, unless the crop
 * changed or the server forgot it). Up to MAX_PHOTOS photos search together (query_ids),
 * each uploaded once. Filters, weights and marks live in the URL. */
export function SearchPage() {
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => readFilters(params), [params]);
  const weights = useMemo(() => readWeights(params), [params]);
  const marks = useMemo(() => readMarks(params), [params]);
  const [hasTexture, setHasTexture] = useState(true); // until an answer says otherwise
  const [blend, setBlend] = useState<AspectScores | null>(null); // the default, as resolved
  const sent = useMemo(() => sendable(weights, hasTexture), [weights, hasTexture]);
  const refine = useMemo((): Refine | null => {
    const given = { ...sent, ...feedback(marks) };
    return Object.keys(given).length ? given : null;
  }, [sent, marks]);
  // The server's id of each photo (and crop) searched, to search it again without upload.
  const queryIds = useRef(new Map<string, string>());
  const [photos, setPhotos] = useState<QueryPhoto[]>([]);
  const [session, setSession] = useState(0); // the first photo's number: one search's photos
  const [crop, setCrop] = useState<PercentCrop | undefined>(); // as drawn, while dragging
  const [region, setRegion] = useState<Crop | null>(null); // as searched: set when a drag ends
  const [k, setK] = useState(DEFAULT_K);
  const image = useRef<HTMLImageElement>(null);
  const first = photos[0];
  const photo = first?.photo;
  const preview = usePreview(photo);

  const search = useQuery({
    queryKey: ["search", session, photos.map((p) => p.id), region, filters, k, sent, marks],
    queryFn: first
      ? async (): Promise<SearchResponse> => {
          const ids = queryIds.current;
          if (photos.length > 1) {
            // Each photo's id (uploaded once, whole), then one search of them all; a photo
            // the server forgot is sent again, and the search tried again.
            const idOf = async ({ id, photo }: QueryPhoto) => {
              const key = JSON.stringify([id, null]);
              const known = ids.get(key);
              if (known) return known;
              const answer = await upload(photo, null, 1, {}, null);
              ids.set(key, answer.query.id);
              return answer.query.id;
            };
            for (let attempt = 0; ; attempt++) {
              const together = await Promise.all(photos.map(idOf));
              try {
                return await searchTogether(together, refine, k, filters);
              } catch (error) {
                if (!isExpiredQuery(error) || attempt >= photos.length) throw error;
                const lost = (error as ApiError).queryId;
                for (const [key, value] of ids) if (lost === undefined || value === lost) ids.delete(key);
              }
            }
          }
          const key = JSON.stringify([first.id, region]);
          const known = ids.get(key);
          if (known) {
            try {
              return await searchAgain(known, refine, k, filters);
            } catch (error) {
              if (!isExpiredQuery(error)) throw error;
              ids.delete(key); // forgotten: send the photo again
            }
          }
          const answer = await upload(first.photo, region, k, filters, refine);
          ids.set(key, answer.query.id);
          return answer;
        }
      : skipToken,
    // The same question gets the same answer: no repeat on window focus.
    staleTime: Infinity,
    // While a new crop, filter, mark, photo or k is searched, the last results stay in view.
    placeholderData: (previous, query) => (query?.queryKey[1] === session ? previous : undefined),
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
    setParams(writeMarks(writeWeights(next, weights), marks), { replace: true });
  };

  const setWeights = (w: AspectWeights | null) => setParams(writeWeights(params, w), { replace: true });
  const setMarks = (m: Marks) => setParams(writeMarks(params, m), { replace: true });
  const mark = (sku: string, m: Mark) => setMarks(toggleMark(marks, sku, m));

  const uncrop = () => {
    setCrop(undefined);
    setRegion(null);
  };

  /** A new photo (null: back to the picker): a new search, so the marks go. (The first
   * pick keeps those of the URL it was opened with: a shared link.) */
  const choose = (p: Picked | null) => {
    const id = ++picks;
    setPhotos(p ? [{ id, photo: p }] : []);
    setSession(id);
    if (!p) setMarks({ more: [], less: [] });
    uncrop();
    setK(DEFAULT_K);
  };

  // Cropping is for one photo: with several, each is searched whole.
  const add = (p: Picked) => {
    setPhotos((list) => (list.length < MAX_PHOTOS ? [...list, { id: ++picks, photo: p }] : list));
    uncrop();
  };
  const remove = (id: number) => setPhotos((list) => list.filter((p) => p.id !== id));

  const cropped = (percent: PercentCrop) => {
    const img = image.current;
    setRegion(img ? toPixelCrop(percent, img.naturalWidth, img.naturalHeight) : null);
  };

  const answer = search.data;
  const together = photos.length > 1;
  return (
    <section className="search-page">
      <h1>Find products that look alike</h1>
      {!photo && <ImagePicker onPick={choose} />}
      {photo && (
        <div className="query">
          <div className="query-image">
            {together ? (
              <ul className="photos" aria-label="Your photos">
                {photos.map((p, i) => (
                  <PhotoThumb key={p.id} photo={p.photo} label={`Photo ${i + 1}`} onRemove={() => remove(p.id)} />
                ))}
              </ul>
            ) : photo.kind === "url" ? (
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
            <p className="hint">
              {together
                ? "These photos are searched together, each whole (cropping needs a single photo)."
                : hint(photo, Boolean(crop?.width))}
            </p>
            {photos.length < MAX_PHOTOS ? (
              <AddPhoto onAdd={add} />
            ) : (
              <p className="hint">At most {MAX_PHOTOS} photos: remove one to add another.</p>
            )}
            {answer && answer.query.colours.length > 0 && (
              <div className="query-colours">
                <span>Colours in your {together ? "photos" : "photo"}</span>
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
      {photo && <MarkBar marks={marks} onChange={setMarks} />}
      {answer && (
        <>
          <p className="summary" aria-live="polite">
            {answer.results.length} look-alikes in {answer.took_ms.toFixed(0)} ms
            {answer.query.crop ? " (cropped region)" : ""}
            {(answer.query.photos ?? 1) > 1 ? ` (${answer.query.photos} photos together)` : ""}
          </p>
          <ProductGrid
            items={withoutHidden(answer.results, marks)}
            queryColours={answer.query.colours}
            queryName={together ? "Your photos" : undefined}
            marking={{ marks, onMark: mark }}
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
