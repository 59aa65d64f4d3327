// Copies Swagger UI (npm swagger-ui-dist, Apache-2.0) into the build, so the API's /docs
// page loads its script and styles from this server, never from a CDN: it works offline.
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = fileURLToPath(new URL("../node_modules/swagger-ui-dist/", import.meta.url));
const target = fileURLToPath(new URL("../dist/docs-assets/", import.meta.url));
mkdirSync(target, { recursive: true });
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"]) {
  copyFileSync(source + file, target + file);
}
