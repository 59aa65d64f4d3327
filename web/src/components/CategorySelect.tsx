import { useQuery } from "@tanstack/react-query";
import { listCategories } from "../lib/api";

/** The catalog's categories (with counts) as a labelled select; "" = all. */
export function CategorySelect({ value, onChange }: { value: string; onChange: (category: string) => void }) {
  const categories = useQuery({ queryKey: ["categories"], queryFn: listCategories });
  return (
    <label>
      Category
      <select value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">All categories</option>
        {categories.data?.map((c) => (
          <option key={c.name} value={c.name}>
            {c.name} ({c.count})
          </option>
        ))}
      </select>
    </label>
  );
}
