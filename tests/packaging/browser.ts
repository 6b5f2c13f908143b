import { createServer, type Server } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { launchChromium } from "../../apps/web/test/chromium.js";
import type { ExampleResult } from "./project.js";

const PAGE =
  `<!doctype html><meta charset="utf-8"><title>sageattn bundle</title><script type="module" src="/bundle.js"></script>`;

/** Serves the page and the bundle, cross-origin isolated (so cpu-simd may use shared memory and workers). */
async function serve(bundle: string): Promise<{ url: string; server: Server }> {
  const js = readFileSync(bundle);
  const server = createServer((req, res) => {
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
    if (req.url === "/bundle.js") res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    else res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no TCP address");
  return { url: `http://127.0.0.1:${address.port}/`, server };
}

/** Opens the bundled page in headless Chromium and returns what the README example reported there. */
export async function runInChromium(outDir: string): Promise<ExampleResult & { error?: string }> {
  const { url, server } = await serve(join(outDir, "browser-page.js"));
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.goto(url);
    await page.waitForFunction(() => (window as { sageattnResult?: unknown }).sageattnResult !== undefined, undefined, {
      timeout: 120_000,
    });
    return await page.evaluate(() =>
      (window as unknown as { sageattnResult: ExampleResult & { error?: string } }).sageattnResult
    );
  } finally {
    await browser.close();
    server.close();
  }
}
