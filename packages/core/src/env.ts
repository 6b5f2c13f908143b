/** Reads an environment variable in Node, Bun, Deno (when allowed) and browsers (never set there). */
export function readEnv(name: string): string | undefined {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; Deno?: { env?: { get(n: string): string | undefined } } };
  try {
    if (g.Deno?.env) return g.Deno.env.get(name) ?? undefined;
  } catch {
    return undefined; // Deno without --allow-env: treat as unset
  }
  return g.process?.env?.[name];
}

/** "node 20.20.2", "bun 1.4.5", "deno 2.9.6", or the browser's user agent. */
export function runtimeName(): string {
  const g = globalThis as { Bun?: { version: string }; Deno?: { version?: { deno: string } }; process?: { versions?: { node?: string } }; navigator?: { userAgent?: string } };
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno?.version) return `deno ${g.Deno.version.deno}`;
  if (g.process?.versions?.node) return `node ${g.process.versions.node}`;
  return g.navigator?.userAgent ?? "unknown runtime";
}
