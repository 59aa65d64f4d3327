import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "react-router-dom";
import { ProgressBar } from "../components/ProgressBar";
import { apiKey, createProduct, getImport, startImport, updateProduct } from "../lib/api";

/** Catalog management with the API key: add, edit, import with live progress. */
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
