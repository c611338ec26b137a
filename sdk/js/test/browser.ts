// What every browser test shares: a page bundled with esbuild and served
// from its own small server on 127.0.0.1, a real abe serve that allows
// that origin by CORS, and headless Chromium (Debian's).
//
// The page has its own origin: fulfilling it with page.route at the API's
// origin does not do, since Chromium then treats it as public and its
// Local Network Access checks block its WebSocket to 127.0.0.1.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type BuildOptions } from "esbuild";
import { chromium, type Browser } from "playwright-core";
import { startServer, type AbeServer } from "./harness.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

/** What {@link startBrowserWorld} makes. */
export interface BrowserWorld {
  srv: AbeServer;
  browser: Browser;
  /** The page's origin, like http://127.0.0.1:41234. */
  origin: string;
  /** The page's URL with the API's in `?api=` (and more query parameters). */
  pageURL(query?: Record<string, string>): string;
  /** The paths of the page's scripts: /app.js and its chunks (what a service worker precaches). */
  scripts: string[];
  close(): Promise<void>;
}

/** Options of {@link startBrowserWorld}. */
export interface BrowserWorldOptions {
  /** The script the page loads, bundled (a file URL or path); the SDK by default, as the global `abe`. */
  entry?: string;
  /** A function run after the script, in the page: its source is inlined. */
  boot?: () => void;
  /** More esbuild options (minify, define). */
  esbuild?: Pick<BuildOptions, "minify" | "define">;
  /** Start no abe server (a test of the browser alone). */
  noServer?: boolean;
  /** More files the page's server answers, by path (a service worker, a stylesheet): a content type and body, asked per request. */
  files?: (path: string) => { type: string; body: string } | undefined;
}

/** Bundles the page, starts abe and Chromium. */
export async function startBrowserWorld(opts: BrowserWorldOptions = {}): Promise<BrowserWorld> {
  if (!existsSync(CHROMIUM))
    throw new Error(`the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium (scripts/test installs it when run as root)`);
  const entry = opts.entry ?? fileURLToPath(new URL("../src/index.ts", import.meta.url));
  // ES modules split as an app's bundler splits them: the offline layer is
  // a chunk the page fetches on first use (src/lazy.ts), as it is in an app.
  const bundle = await build({
    // (A page of its own is the entry itself: imported from stdin, the
    // package's sideEffects: false would drop it.)
    ...(opts.entry
      ? { entryPoints: { app: entry } }
      : { stdin: { contents: `import * as abe from ${JSON.stringify(entry)}; (globalThis as { abe?: unknown }).abe = abe;`, resolveDir: dirname(entry), loader: "ts" as const } }),
    bundle: true,
    format: "esm",
    splitting: true,
    outdir: "/out",
    entryNames: "app",
    platform: "browser",
    target: "es2022",
    write: false,
    ...opts.esbuild,
  });
  const scripts = new Map(bundle.outputFiles.map((f) => [f.path.slice("/out".length), f.text]));
  // Module scripts run in order, after the document: the boot after the app.
  const boot = opts.boot ? `<script type="module">(${opts.boot.toString()})()</script>` : "";
  const html = `<!doctype html><body><script type="module" src="/app.js"></script>${boot}</body>`;
  const web: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const file = opts.files?.(path);
    if (file) return void res.writeHead(200, { "Content-Type": file.type, "Cache-Control": "no-cache" }).end(file.body);
    const js = scripts.get(path);
    if (js !== undefined) return void res.writeHead(200, { "Content-Type": "text/javascript" }).end(js);
    res.writeHead(200, { "Content-Type": "text/html" }).end(html);
  });
  await new Promise<void>((res) => web.listen(0, "127.0.0.1", res));
  const origin = `http://127.0.0.1:${(web.address() as AddressInfo).port}`;
  let srv: AbeServer | undefined;
  if (!opts.noServer) {
    // The harness passes its environment on to abe serve (ABE_<SECTION>_<KEY> overrides).
    process.env.ABE_SERVER_CORS_ALLOWED_ORIGINS = JSON.stringify([origin]);
    try {
      srv = await startServer();
    } finally {
      delete process.env.ABE_SERVER_CORS_ALLOWED_ORIGINS;
    }
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  return {
    srv: srv!,
    browser,
    origin,
    scripts: [...scripts.keys()].sort(),
    pageURL: (query = {}) => `${origin}/?${new URLSearchParams({ ...(srv ? { api: srv.url } : {}), ...query })}`,
    close: async () => {
      await browser.close();
      await srv?.stop();
      web.close();
    },
  };
}
