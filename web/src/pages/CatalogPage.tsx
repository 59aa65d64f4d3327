import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useSearchParams } from "react-router-dom";
import { ProductGrid } from "../components/ProductGrid";
import { CategorySelect } from "../components/CategorySelect";
import { listProducts } from "../lib/api";

const PAGE_SIZE = 48;

/** Browse the catalog by category, a page at a time (the page is in the URL). */
export function CatalogPage() {
  const [params, setParams] = useSearchParams();
  const category = params.get("category") || undefined;
  const q = params.get("q") || undefined;
  const page = Math.max(1, Number(params.get("page") || 1));
  const products = useQuery({
    queryKey: ["products", category, q, page],
    queryFn: () => listProducts({ page, page_size: PAGE_SIZE, category, q }),
    placeholderData: keepPreviousData,
  });
  const go = (changes: Record<string, string | undefined>) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) {
      if (v) next.set(k, v);
      else next.delete(k);
    }
    setParams(next);
  };
  const pages = products.data ? Math.max(1, Math.ceil(products.data.total / PAGE_SIZE)) : 1;
  return (
    <section>
      <h1>Catalog</h1>
      <div className="filters">
        <CategorySelect value={category ?? ""} onChange={(c) => go({ category: c, page: undefined })} />
        <label>
          Title contains
          <input type="search" defaultValue={q} onKeyDown={(e) => e.key === "Enter" && go({ q: e.currentTarget.value, page: undefined })} />
        </label>
      </div>
      {products.isError && <p role="alert" className="error">{products.error.message}</p>}
      {products.isPending && <p className="loading">Loading…</p>}
      {products.data && (
        <>
          <p className="summary">{products.data.total} products</p>
          <ProductGrid items={products.data.items.map((product) => ({ product }))} empty="No products here yet." />
          <nav className="pager" aria-label="Pages">
            <button type="button" className="secondary" disabled={page <= 1} onClick={() => go({ page: String(page - 1) })}>
              Previous
            </button>
            <span>
              Page {page} of {pages}
            </span>
            <button type="button" className="secondary" disabled={page >= pages} onClick={() => go({ page: String(page + 1) })}>
              Next
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
