import { Link } from "react-router-dom";
import type { SearchResult } from "../lib/api";
import { formatPrice } from "../lib/format";

/** A product, and for a search result its score and match (the API's SearchResult). */
export type GridItem = Pick<SearchResult, "product"> & Partial<SearchResult>;

/** Responsive grid of product cards: thumbnail (lazy, fixed aspect: no layout shift),
 * title, price, category and, for search results, the similarity score and an
 * "Exact match" badge on the product the photo shows. */
export function ProductGrid({ items, empty }: { items: GridItem[]; empty: string }) {
  if (items.length === 0) return <p className="empty">{empty}</p>;
  return (
    <ul className="grid" aria-label="Products">
      {items.map(({ product, score, match, inliers }) => (
        <li
          key={product.sku}
          className={match === "exact" ? "card exact" : "card"}
          data-testid="product-card"
          data-category={product.category ?? ""}
          data-match={match ?? ""}
        >
          {match === "exact" && (
            <span className="badge" title={`${inliers ?? 0} details of the photo match this product's image`}>
              Exact match
            </span>
          )}
          <Link to={`/products/${encodeURIComponent(product.sku)}`}>
            <img
              src={product.thumbnail_url}
              alt={product.title ?? product.sku}
              loading="lazy"
              width={256}
              height={256}
            />
            <span className="title">{product.title ?? product.sku}</span>
          </Link>
          <span className="meta">
            <span className="category">{product.category ?? "—"}</span>
            <span className="price">{formatPrice(product.price, product.currency)}</span>
          </span>
          {score !== undefined && (
            <span className="score" title="similarity (1 = identical)">
              {(score * 100).toFixed(0)}% alike
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}
