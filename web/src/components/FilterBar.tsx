import type { Filters } from "../lib/api";
import { CategorySelect } from "./CategorySelect";

/** Category and price filters; changes apply at once (no page reload). */
export function FilterBar({ filters, onChange }: { filters: Filters; onChange: (f: Filters) => void }) {
  const price = (v: string) => (v === "" ? undefined : Number(v));
  return (
    <div className="filters" role="group" aria-label="Filters">
      <CategorySelect
        value={filters.category ?? ""}
        onChange={(category) => onChange({ ...filters, category: category || undefined })}
      />
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
