import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { DuplicateGroups } from "../components/DuplicateGroups";
import { ProgressBar } from "../components/ProgressBar";
import {
  DUPLICATE_THRESHOLD,
  apiKey,
  createProduct,
  deleteProduct,
  getImport,
  listDuplicates,
  startImport,
  updateProduct,
} from "../lib/api";

const DUPLICATES_PAGE_SIZE = 10;

/** Catalog management with the API key: add, edit, import with live progress, and
 * find duplicate products. */
export function ManagePage() {
  const [key, setKey] = useState(apiKey.get());
  return (
    <section className="manage">
      <h1>Manage the catalog</h1>
      <form
        className="card-form"
        onSubmit={(e) => {
          e.preventDefault();
          apiKey.set(key);
        }}
      >
        <label>
          API key
          <input type="password" value={key} onChange={(e) => setKey(e.target.value)} autoComplete="off" />
        </label>
        <button type="submit">Use this key</button>
        <p className="hint">Kept for this browser tab only. Writes need it; searching does not.</p>
      </form>
      <AddProduct />
      <EditProduct />
      <ImportCatalog />
      <FindDuplicates />
    </section>
  );
}

function AddProduct() {
  const client = useQueryClient();
  const add = useMutation({
    mutationFn: (form: FormData) => createProduct(form),
    onSuccess: () => client.invalidateQueries(),
  });
  return (
    <form
      className="card-form"
      aria-label="Add a product"
      onSubmit={(e) => {
        e.preventDefault();
        add.mutate(new FormData(e.currentTarget));
      }}
    >
      <h2>Add a product</h2>
      <label>
        SKU <input name="sku" required maxLength={255} />
      </label>
      <label>
        Photo <input name="image" type="file" accept="image/*" required />
      </label>
      <label>
        Title <input name="title" />
      </label>
      <label>
        Category <input name="category" />
      </label>
      <label>
        Price <input name="price" type="number" min={0} step="0.01" />
      </label>
      <label>
        Currency <input name="currency" maxLength={8} placeholder="EUR" />
      </label>
      <button type="submit" disabled={add.isPending}>
        {add.isPending ? "Adding…" : "Add product"}
      </button>
      {add.isError && <p role="alert" className="error">{add.error.message}</p>}
      {add.data && (
        <p className="ok" role="status">
          Added <Link to={`/products/${encodeURIComponent(add.data.sku)}`}>{add.data.sku}</Link> — searchable now.
        </p>
      )}
    </form>
  );
}

function EditProduct() {
  const client = useQueryClient();
  const edit = useMutation({
    mutationFn: ({ sku, form }: { sku: string; form: FormData }) => updateProduct(sku, form),
    onSuccess: () => client.invalidateQueries(),
  });
  return (
    <form
      className="card-form"
      aria-label="Edit a product"
      onSubmit={(e) => {
        e.preventDefault();
        const form = new FormData(e.currentTarget);
        const sku = String(form.get("sku"));
        form.delete("sku");
        for (const [k, v] of Array.from(form.entries())) {
          if (v === "" || (v instanceof File && v.size === 0)) form.delete(k);
        }
        edit.mutate({ sku, form });
      }}
    >
      <h2>Edit a product</h2>
      <label>
        SKU <input name="sku" required />
      </label>
      <label>
        New title <input name="title" />
      </label>
      <label>
        New price <input name="price" type="number" min={0} step="0.01" />
      </label>
      <label>
        New photo <input name="image" type="file" accept="image/*" />
      </label>
      <button type="submit" disabled={edit.isPending}>
        Save changes
      </button>
      {edit.isError && <p role="alert" className="error">{edit.error.message}</p>}
      {edit.data && <p className="ok" role="status">Saved {edit.data.sku}.</p>}
    </form>
  );
}

function ImportCatalog() {
  const [jobId, setJobId] = useState<string | null>(null);
  const start = useMutation({
    mutationFn: (form: FormData) => {
      const images = form.get("images") as File | null;
      return startImport(form.get("catalog") as File, images && images.size ? images : null);
    },
    onSuccess: (job) => setJobId(job.id),
  });
  const job = useQuery({
    queryKey: ["import", jobId],
    queryFn: () => getImport(jobId as string),
    enabled: jobId !== null,
    refetchInterval: (q) => (q.state.data && ["done", "failed"].includes(q.state.data.status) ? false : 500),
  });
  const j = job.data;
  return (
    <form
      className="card-form"
      aria-label="Import a catalog"
      onSubmit={(e) => {
        e.preventDefault();
        setJobId(null);
        start.mutate(new FormData(e.currentTarget));
      }}
    >
      <h2>Import a catalog</h2>
      <label>
        CSV or JSONL (columns sku, image, title, category, price…)
        <input name="catalog" type="file" accept=".csv,.jsonl,.json" required />
      </label>
      <label>
        Images (zip, optional)
        <input name="images" type="file" accept=".zip" />
      </label>
      <button type="submit" disabled={start.isPending}>
        Start import
      </button>
      {start.isError && <p role="alert" className="error">{start.error.message}</p>}
      {j && (
        <div className="import-status" data-testid="import-status">
          <ProgressBar value={j.status === "done" ? j.total : j.processed} max={j.total || 1} label="Import progress" />
          <p role="status">
            {j.status}: {j.added} added, {j.updated} updated, {j.unchanged} unchanged, {j.errors.length} failed
            {j.message ? ` — ${j.message}` : ""}
          </p>
          {j.errors.length > 0 && (
            <table>
              <caption>Rows that failed</caption>
              <thead>
                <tr>
                  <th>row</th>
                  <th>SKU</th>
                  <th>reason</th>
                </tr>
              </thead>
              <tbody>
                {/* The API's schema leaves these rows untyped (row, sku, reason). */}
                {j.errors.map((e, i) => (
                  <tr key={i}>
                    <td>{String(e.row ?? "")}</td>
                    <td>{String(e.sku ?? "")}</td>
                    <td>{String(e.reason ?? "")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </form>
  );
}

/** Products whose photos are the same or nearly, found on request (the server compares
 * the catalog's photos once, then pages through the groups); open or delete them here. */
function FindDuplicates() {
  const client = useQueryClient();
  const [threshold, setThreshold] = useState<number>(DUPLICATE_THRESHOLD.default);
  const [asked, setAsked] = useState<number | null>(null);
  const [page, setPage] = useState(1);
  const found = useQuery({
    queryKey: ["duplicates", asked, page],
    queryFn: () => listDuplicates({ threshold: asked ?? undefined, page, page_size: DUPLICATES_PAGE_SIZE }),
    enabled: asked !== null,
    placeholderData: keepPreviousData,
  });
  const remove = useMutation({
    mutationFn: (sku: string) => deleteProduct(sku),
    onSuccess: () => client.invalidateQueries(),
  });
  const data = found.data;
  const pages = data ? Math.max(1, Math.ceil(data.total / DUPLICATES_PAGE_SIZE)) : 1;
  // A deletion can empty the last page: show the one before it.
  useEffect(() => {
    if (data && page > pages) setPage(pages);
  }, [data, page, pages]);
  return (
    <section className="duplicates" aria-labelledby="duplicates-heading">
      <h2 id="duplicates-heading">Duplicates</h2>
      <form
        className="filters"
        aria-label="Find duplicates"
        onSubmit={(e) => {
          e.preventDefault();
          setPage(1);
          if (asked === threshold) void found.refetch();
          setAsked(threshold);
        }}
      >
        <label>
          Threshold
          <input
            type="number"
            min={DUPLICATE_THRESHOLD.min}
            max={DUPLICATE_THRESHOLD.max}
            step={0.01}
            value={threshold}
            onChange={(e) => setThreshold(Number(e.target.value))}
          />
        </label>
        <button type="submit" disabled={found.isFetching}>
          {found.isFetching ? "Comparing photos…" : "Find duplicates"}
        </button>
      </form>
      <p className="hint">
        Products whose photos are the same or nearly: re-encoded, resized, cropped, mirrored or slightly recoloured
        copies. A lower threshold finds more heavily edited copies and takes longer. Deleting needs the API key.
      </p>
      {found.isError && <p role="alert" className="error">{found.error.message}</p>}
      {remove.isError && <p role="alert" className="error">{remove.error.message}</p>}
      {data && (
        <>
          <p className="summary" role="status">
            {data.total === 0
              ? `No duplicates among ${data.products} products.`
              : `${data.total} ${data.total === 1 ? "group" : "groups"} of duplicates among ${data.products} products.`}
            {data.unreadable > 0 && ` ${data.unreadable} photos could not be read and were not compared.`}
          </p>
          <DuplicateGroups
            groups={data.groups}
            onDelete={(sku) => remove.mutate(sku)}
            deleting={remove.isPending ? (remove.variables ?? null) : null}
          />
          {pages > 1 && (
            <nav className="pager" aria-label="Duplicate pages">
              <button type="button" className="secondary" disabled={page <= 1} onClick={() => setPage(page - 1)}>
                Previous
              </button>
              <span>
                Page {page} of {pages}
              </span>
              <button type="button" className="secondary" disabled={page >= pages} onClick={() => setPage(page + 1)}>
                Next
              </button>
            </nav>
          )}
        </>
      )}
    </section>
  );
}
