import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { AspectControls } from "../components/AspectControls";
import { MarkBar } from "../components/Marks";
import { ProductGrid } from "../components/ProductGrid";
import { ApiError, apiKey, deleteProduct, getProduct, getSimilar, type AspectWeights } from "../lib/api";
import { readWeights, sendable, textureIn, writeWeights } from "../lib/aspects";
import { feedback, readMarks, toggleMark, withoutHidden, writeMarks, type Mark, type Marks } from "../lib/marks";
import { formatPrice } from "../lib/format";

/** One product, large, with its details and "similar products" to keep browsing, weighed
 * by shape, colour and texture and refined by the shopper's "more / less like this"
 * marks, as the URL says (?shape=..&colour=..&texture=..&more=sku&less=sku). */
export function ProductPage() {
  const sku = decodeURIComponent(useParams()["*"] ?? "");
  const navigate = useNavigate();
  const client = useQueryClient();
  const product = useQuery({ queryKey: ["product", sku], queryFn: () => getProduct(sku) });
  const [params, setParams] = useSearchParams();
  const weights = useMemo(() => readWeights(params), [params]);
  const [hasTexture, setHasTexture] = useState(true); // until the results say otherwise
  const sent = useMemo(() => sendable(weights, hasTexture), [weights, hasTexture]);
  const marks = useMemo(() => readMarks(params), [params]);
  const similar = useQuery({
    queryKey: ["similar", sku, sent, marks],
    queryFn: () => getSimilar(sku, { ...sent, ...feedback(marks) }),
    // While other weights or marks are searched, this product's last list stays in view.
    placeholderData: (previous, query) => (query?.queryKey[1] === sku ? previous : undefined),
  });
  const { data, error } = similar;
  useEffect(() => {
    const texture = textureIn((data ?? []).map((r) => r.aspects));
    if (texture !== undefined) setHasTexture(texture);
  }, [data]);
  useEffect(() => {
    // A link's texture weight on a catalog without texture: search without it.
    if (error instanceof ApiError && error.code === "aspect_weights" && sent?.texture) setHasTexture(false);
  }, [error, sent]);
  const setWeights = (w: AspectWeights | null) => setParams(writeWeights(params, w), { replace: true });
  const setMarks = (m: Marks) => setParams(writeMarks(params, m), { replace: true });
  const mark = (other: string, m: Mark) => setMarks(toggleMark(marks, other, m));
  const remove = useMutation({
    mutationFn: () => deleteProduct(sku),
    onSuccess: () => {
      client.invalidateQueries();
      navigate("/catalog");
    },
  });

  if (product.isPending) return <p className="loading">Loading…</p>;
  if (product.isError)
    return (
      <p role="alert" className="error">
        {product.error.message} <Link to="/catalog">Back to the catalog</Link>
      </p>
    );
  const p = product.data;
  return (
    <section className="product-page">
      <div className="product">
        <img src={p.image_url} alt={p.title ?? p.sku} className="large" width={p.image_width ?? undefined} height={p.image_height ?? undefined} />
        <div className="details">
          <h1>{p.title ?? p.sku}</h1>
          <p className="price">{formatPrice(p.price, p.currency)}</p>
          <dl>
            <dt>SKU</dt>
            <dd>{p.sku}</dd>
            <dt>Category</dt>
            <dd>{p.category ?? "—"}</dd>
            {Object.entries(p.metadata ?? {}).slice(0, 8).map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd>{String(v)}</dd>
              </div>
            ))}
          </dl>
          {p.url && (
            <a href={p.url} rel="noopener noreferrer" target="_blank">
              View in shop
            </a>
          )}
          {apiKey.get() && (
            <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
              Delete product
            </button>
          )}
          {remove.isError && <p role="alert" className="error">{remove.error.message}</p>}
        </div>
      </div>
      <h2>Similar products</h2>
      <AspectControls weights={weights} hasTexture={hasTexture} onChange={setWeights} />
      {similar.isFetching && !similar.isPending && <p className="loading">Finding similar products…</p>}
      {similar.isPending && <p className="loading">Finding similar products…</p>}
      {similar.isError && <p role="alert" className="error">{similar.error.message}</p>}
      <MarkBar marks={marks} onChange={setMarks} />
      {similar.data && (
        <ProductGrid
          items={withoutHidden(similar.data, marks)}
          marking={{ marks, onMark: mark }}
          empty="No similar products yet."
        />
      )}
    </section>
  );
}
