import { useQuery } from "@tanstack/react-query";
import { listCategories, type Filters } from "../lib/api";

/** Category and price filters; changes apply at once (no page reload). */
export function FilterBar({ filters, onChange }: { filters: Filters; onChange: (f: Filters) => void }) {
  const categories = useQuery({ queryKey: ["categories"], queryFn: listCategories });
  const price = (v: string) => (v === "" ? undefined : Number(v));
  return (
    <div className="filters" role="group" aria-label="Filters">
      <label>
        Category
        <select
          value={filters.category ?? ""}
          onChange={(e) => onChange({ ...filters, category: e.target.value || undefined })}
        >
          <option value="">All categories</option>
          {categories.data?.map((c) => (
            <option key={c.name} value={c.name}>
              {c.name} ({c.count})
            </option>
          ))}
        </select>
      </label>
      <label>
        Min price
        <input
          type="number"
          min={0}
          inputMode="decimal"
          value={filters.min_price ?? ""}
          onChange={(e) => onChange({ ...filters, min_price: price(e.target.value) })}
        />
      </label>
      <label>
        Max price
        <input
          type="number"
          min={0}
          inputMode="decimal"
          value={filters.max_price ?? ""}
          onChange={(e) => onChange({ ...filters, max_price: price(e.target.value) })}
        />
      </label>
    </div>
  );
}
