import { useState } from "react";
import { Link } from "react-router-dom";
import type { DuplicateGroup } from "../lib/api";
import { formatPrice } from "../lib/format";

/** Groups of products whose photos are the same or nearly, each group's products side
 * by side: thumbnail, title, SKU and price, a link to the product and a delete button
 * that asks once more before it calls ``onDelete``. */
export function DuplicateGroups({
  groups,
  onDelete,
  deleting,
}: {
  groups: DuplicateGroup[];
  onDelete: (sku: string) => void;
  deleting: string | null;
}) {
  const [confirming, setConfirming] = useState<string | null>(null);
  return (
    <ol className="dup-groups" aria-label="Duplicate groups">
      {groups.map((group) => (
        <li key={group.products.map((p) => p.sku).join("\n")} className="dup-group" data-testid="duplicate-group">
          <p className="dup-meta">
            {group.identical ? "Identical files" : `${Math.floor(group.similarity * 100)}% alike`} ·{" "}
            {group.products.length} products
          </p>
          <ul className="dup-row">
            {group.products.map((p) => (
              <li key={p.sku} className="card" data-testid="duplicate-card" data-sku={p.sku}>
                <img src={p.thumbnail_url} alt={p.title ?? p.sku} loading="lazy" width={256} height={256} />
                <span className="title">{p.title ?? p.sku}</span>
                <span className="meta">
                  <span className="sku">{p.sku}</span>
                  <span className="price">{formatPrice(p.price, p.currency)}</span>
                </span>
                <span className="dup-actions">
                  <Link to={`/products/${encodeURIComponent(p.sku)}`}>Open</Link>
                  {confirming === p.sku ? (
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Really delete ${p.sku}`}
                      disabled={deleting !== null}
                      onClick={() => {
                        setConfirming(null);
                        onDelete(p.sku);
                      }}
                    >
                      {deleting === p.sku ? "Deleting…" : "Really delete?"}
                    </button>
                  ) : (
                    <button
                      type="button"
                      className="secondary"
                      aria-label={`Delete ${p.sku}`}
                      disabled={deleting !== null}
                      onClick={() => setConfirming(p.sku)}
                    >
                      {deleting === p.sku ? "Deleting…" : "Delete"}
                    </button>
                  )}
                </span>
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ol>
  );
}
