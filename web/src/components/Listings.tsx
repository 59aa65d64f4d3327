import { Link } from "react-router-dom";
import type { Product } from "../lib/api";
import { formatPrice } from "../lib/format";

/** The other listings of a result's photo (the API's ``listings``: the same picture, or
 * an edited copy of it, under other SKUs), folded under "N listings of this photo": open
 * it to see each one's thumbnail, title, SKU and price, and a link to it. */
export function Listings({ listings, name }: { listings: Product[]; name: string }) {
  if (listings.length === 0) return null;
  const count = listings.length + 1; // this result's product is one of them
  return (
    <details className="listings" data-testid="listings">
      <summary title={`${count - 1} other products are listed with this photo of ${name}`}>
        {count} listings of this photo
      </summary>
      <ul aria-label={`Other listings of this photo of ${name}`}>
        {listings.map((p) => (
          <li key={p.sku} data-testid="listing" data-sku={p.sku}>
            <Link to={`/products/${encodeURIComponent(p.sku)}`}>
              <img src={p.thumbnail_url} alt="" loading="lazy" width={48} height={48} />
              <span className="listing-text">
                <span className="listing-title">{p.title ?? p.sku}</span>
                <span className="listing-meta">
                  <span className="sku">{p.sku}</span>
                  {p.price !== null && p.price !== undefined && (
                    <span className="price">{formatPrice(p.price, p.currency)}</span>
                  )}
                </span>
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </details>
  );
}
