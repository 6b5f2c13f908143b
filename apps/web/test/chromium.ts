import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium } from "playwright-core";

/** Debian's Chromium; override with SAGEATTN_CHROMIUM. */
export const CHROMIUM_PATH = process.env.SAGEATTN_CHROMIUM ?? "/usr/bin/chromium";

/**
 * WebGPU needs --enable-unsafe-webgpu on Linux (SwiftShader adapter); the rest stop Chromium from reaching for the
 * network (component updates, sync, QUIC), which fails noisily and slowly on CI machines without access.
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];

export interface Chromium {
  readonly context: BrowserContext;
  /** Closes the browser, kills any of its processes still alive, and removes the profile. Safe to call twice. */
  close(): Promise<void>;
}

/** Ids of processes whose command line names `marker` (our fresh profile folder, so only the Chromium we started). */
function processesNaming(marker: string): number[] {
  if (!existsSync("/proc")) return [];
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(marker)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/** Headless Chromium with a fresh profile folder. */
export async function launchChromium(): Promise<Chromium> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set SAGEATTN_CHROMIUM)`);
  }
  const profile = mkdtempSync(join(tmpdir(), "sageattn-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1200, height: 900 },
  });
  let closed = false;
  return {
    context,
    async close() {
      if (closed) return;
      closed = true;
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, 10_000));
      await Promise.race([context.close().catch(() => undefined), timeout]);
      for (const pid of processesNaming(profile)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
