import { Link } from "react-router-dom";
import type { SearchResult, Swatch } from "../lib/api";
import { formatPrice } from "../lib/format";
import type { Mark, Marks } from "../lib/marks";
import { AspectBars, Swatches, WhyButton } from "./Aspects";
import { Listings } from "./Listings";
import { MarkButtons } from "./Marks";

/** A product, and for a search result its score and match (the API's SearchResult). */
export type GridItem = Pick<SearchResult, "product"> & Partial<SearchResult>;

interface Props {
  items: GridItem[];
  empty: string;
  /** The query's colours, for the "Why?" comparison, and what the query is called. */
  queryColours?: Swatch[];
  queryName?: string;
  /** The shopper's marks, and how to change one: thumb up / down buttons on each card. */
  marking?: { marks: Marks; onMark: (sku: string, mark: Mark) => void };
}

/** Responsive grid of product cards: thumbnail (lazy, fixed aspect: no layout shift),
 * title, price, category and, for search results, the similarity score, the other
 * listings of its photo ("3 listings of this photo", folded), a bar per aspect (shape,
 * colour, texture), the product's colours, a "Why?" popover and an "Exact match" badge
 * on the product the photo shows; with ``marking``, thumb up / down buttons. */
export function ProductGrid({ items, empty, queryColours, queryName, marking }: Props) {
  if (items.length === 0) return <p className="empty">{empty}</p>;
  return (
    <ul className="grid" aria-label="Products">
      {items.map((item) => {
        const { product, score, match, inliers, aspects, colours, listings } = item;
        const name = product.title ?? product.sku;
        return (
          <li
            key={product.sku}
            className={match === "exact" ? "card exact" : "card"}
            data-testid="product-card"
            data-category={product.category ?? ""}
            data-match={match ?? ""}
            data-sku={product.sku}
          >
            {match === "exact" && (
              <span className="badge" title={`${inliers ?? 0} details of the photo match this product's image`}>
                Exact match
              </span>
            )}
            <Link to={`/products/${encodeURIComponent(product.sku)}`}>
              <img
                src={product.thumbnail_url}
                alt={name}
                loading="lazy"
                width={256}
                height={256}
              />
              <span className="title">{name}</span>
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
            {listings && <Listings listings={listings} name={name} />}
            {aspects && <AspectBars aspects={aspects} />}
            {(Boolean(colours?.length) || score !== undefined || marking) && (
              <div className="card-foot">
                {colours && <Swatches colours={colours} label={`Colours of ${name}`} />}
                {marking && <MarkButtons sku={product.sku} name={name} {...marking} />}
                {score !== undefined && (
                  <WhyButton result={item} title={name} queryColours={queryColours} queryName={queryName} />
                )}
              </div>
            )}
          </li>
        );
      })}
    </ul>
  );
}
