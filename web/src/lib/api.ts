// Thin client for the lookalike REST API (/api/v1). Errors arrive as RFC 9457 problem
// documents; ApiError carries their human message.

export interface Product {
  sku: string;
  title: string | null;
  category: string | null;
  price: number | null;
  currency: string | null;
  url: string | null;
  metadata: Record<string, unknown>;
  image_url: string;
  thumbnail_url: string;
  image_width: number | null;
  image_height: number | null;
}

export interface SearchResult {
  score: number;
  /** exact: the photo shows this very product; similar: a look-alike. */
  match: "exact" | "similar";
  /** Verified local-feature matches; null when the result was not verified. */
  inliers: number | null;
  product: Product;
}

export interface SearchResponse {
  results: SearchResult[];
  took_ms: number;
  query: { width: number; height: number; crop: Crop | null; k: number };
}

export interface Crop {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Filters {
  category?: string;
  min_price?: number;
  max_price?: number;
}

export interface ProductPage {
  items: Product[];
  total: number;
  page: number;
  page_size: number;
}

export interface Category {
  name: string;
  count: number;
}

export interface ImportJob {
  id: string;
  status: "queued" | "running" | "done" | "failed";
  total: number;
  processed: number;
  added: number;
  updated: number;
  unchanged: number;
  errors: { row: string; sku: string | null; reason: string }[];
  message: string | null;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

const BASE = "/api/v1";
const KEY_STORAGE = "lookalike.apiKey";

export const apiKey = {
  get: (): string => sessionStorage.getItem(KEY_STORAGE) ?? "",
  set: (key: string) => sessionStorage.setItem(KEY_STORAGE, key),
};

async function request<T>(path: string, init: RequestInit = {}, auth = false): Promise<T> {
  const headers = new Headers(init.headers);
  if (auth && apiKey.get()) headers.set("Authorization", `Bearer ${apiKey.get()}`);
  let response: Response;
  try {
    response = await fetch(`${BASE}${path}`, { ...init, headers });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Is it running?");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      detail = body.detail ?? body.title ?? detail;
    } catch {
      /* not a problem document */
    }
    throw new ApiError(response.status, detail || `request failed (${response.status})`);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

function filterParams(filters: Filters, form?: FormData): URLSearchParams {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    if (value === undefined || value === "" || Number.isNaN(value)) continue;
    if (form) form.append(key, String(value));
    else params.set(key, String(value));
  }
  return params;
}

export function searchByFile(file: Blob, crop: Crop | null, k: number, filters: Filters) {
  const form = new FormData();
  form.append("image", file, "query");
  form.append("k", String(k));
  if (crop) form.append("crop", `${crop.x},${crop.y},${crop.w},${crop.h}`);
  filterParams(filters, form);
  return request<SearchResponse>("/search", { method: "POST", body: form });
}

export function searchByUrl(imageUrl: string, k: number, filters: Filters) {
  return request<SearchResponse>("/search", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ image_url: imageUrl, k, ...filters }),
  });
}

export const getProduct = (sku: string) =>
  request<Product>(`/products/${encodeURIComponent(sku)}`);

export function getSimilar(sku: string, k: number, category?: string) {
  const params = new URLSearchParams({ k: String(k) });
  if (category) params.set("category", category);
  return request<SearchResult[]>(`/products/${encodeURIComponent(sku)}/similar?${params}`);
}

export function listProducts(page: number, pageSize: number, category?: string, q?: string) {
  const params = new URLSearchParams({ page: String(page), page_size: String(pageSize) });
  if (category) params.set("category", category);
  if (q) params.set("q", q);
  return request<ProductPage>(`/products?${params}`);
}

export const listCategories = () => request<Category[]>("/categories");

export function createProduct(form: FormData) {
  return request<Product>("/products", { method: "POST", body: form }, true);
}

export function updateProduct(sku: string, form: FormData) {
  return request<Product>(`/products/${encodeURIComponent(sku)}`, { method: "PUT", body: form }, true);
}

export function deleteProduct(sku: string) {
  return request<void>(`/products/${encodeURIComponent(sku)}`, { method: "DELETE" }, true);
}

export function startImport(catalog: File, images: File | null) {
  const form = new FormData();
  form.append("catalog", catalog);
  if (images) form.append("images", images);
  return request<ImportJob>("/imports", { method: "POST", body: form }, true);
}

export const getImport = (id: string) => request<ImportJob>(`/imports/${id}`);
