// The app's service worker of the test, built per version (API, VERSION and SCRIPTS defined by esbuild).
import { abeServiceWorker } from "../src/sw.js";

declare const API: string;
declare const VERSION: string;
/** The page's scripts: /app.js and the chunks it fetches (the offline layer's). */
declare const SCRIPTS: string[];

abeServiceWorker({ url: API, precache: ["/", ...SCRIPTS, "/app.css"], version: VERSION });

// The test asks which version controls the page.
self.addEventListener("message", (e) => {
  if ((e as MessageEvent).data === "version") (e as MessageEvent).ports[0]?.postMessage(VERSION);
});
