import { NavLink, Route, Routes } from "react-router-dom";
import { CatalogPage } from "./pages/CatalogPage";
import { ManagePage } from "./pages/ManagePage";
import { ProductPage } from "./pages/ProductPage";
import { SearchPage } from "./pages/SearchPage";

export function App() {
  return (
    <>
      <header className="topbar">
        <NavLink to="/" className="brand">
          lookalike
        </NavLink>
        <nav aria-label="Main">
          <NavLink to="/" end>
            Search by photo
          </NavLink>
          <NavLink to="/catalog">Catalog</NavLink>
          <NavLink to="/manage">Manage</NavLink>
        </nav>
      </header>
      <main>
        <Routes>
          <Route path="/" element={<SearchPage />} />
          <Route path="/catalog" element={<CatalogPage />} />
          <Route path="/products/*" element={<ProductPage />} />
          <Route path="/manage" element={<ManagePage />} />
          <Route path="*" element={<p className="empty">This page does not exist.</p>} />
        </Routes>
      </main>
    </>
  );
}
