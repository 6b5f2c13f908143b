/** Reads an environment variable in Node, Bun, Deno (when allowed) and browsers (never set there). */
export function readEnv(name: string): string | undefined {
  const g = globalThis as {
    process?: { env?: Record<string, string | undefined> };
    Deno?: { env?: { get(n: string): string | undefined } };
  };
  try {
    if (g.Deno?.env) return g.Deno.env.get(name) ?? undefined;
  } catch {
    return undefined; // Deno without --allow-env: treat as unset
  }
  return g.process?.env?.[name];
}

/** "node 20.20.2", "bun 1.4.5", "deno 2.9.6", or the browser and its major version ("Chrome 156"). */
export function runtimeName(): string {
  const g = globalThis as {
    Bun?: { version: string };
    Deno?: { version?: { deno: string } };
    process?: { versions?: { node?: string } };
    navigator?: { userAgent?: string };
  };
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno?.version) return `deno ${g.Deno.version.deno}`;
  if (g.process?.versions?.node) return `node ${g.process.versions.node}`;
  const ua = g.navigator?.userAgent;
  return ua ? browserName(ua) : "unknown runtime";
}

/** "Chrome 156 (headless)" from a browser's user agent; the user agent itself when no known browser is named. */
export function browserName(ua: string): string {
  // Edge's user agent also names Chrome and Safari, and Chrome's names Safari: look for the most specific first.
  const browsers: Array<[string, RegExp]> = [["Edge", /Edg\/(\d+)/], ["Firefox", /Firefox\/(\d+)/], [
    "Chrome",
    /Chrome\/(\d+)/,
  ], ["Safari", /Version\/(\d+)[\d.]* Safari/]];
  const found = browsers.map(([name, re]) => [name, re.exec(ua)?.[1]] as const).find(([, v]) => v);
  if (!found) return ua;
  return `${found[0]} ${found[1]}${/Headless/.test(ua) ? " (headless)" : ""}`;
}
