import { fileURLToPath } from "node:url";
import { build, preview } from "vite";

/** The app's root folder (where index.html and vite.config.ts live). */
export const appRoot = fileURLToPath(new URL("..", import.meta.url));

export interface Served {
  readonly url: string;
  close(): Promise<void>;
}

/** Builds the page with its own vite.config.ts and serves `dist/` with `vite preview` on 127.0.0.1, on a free port. */
export async function buildAndServe(): Promise<Served> {
  await build({ root: appRoot, logLevel: "warn" });
  // Port 0 lets the OS pick a free port, so parallel CI jobs never collide.
  const server = await preview({
    root: appRoot,
    logLevel: "warn",
    preview: { host: "127.0.0.1", port: 0, strictPort: true, open: false },
  });
  const address = server.httpServer.address();
  if (!address || typeof address === "string") throw new Error(`vite preview gave no TCP address: ${String(address)}`);
  return {
    url: `http://127.0.0.1:${address.port}/`,
    close: () => server.close(),
  };
}
