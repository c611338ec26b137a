// The app's service worker of the test, built per version (API and VERSION defined by esbuild).
import { abeServiceWorker } from "../src/sw.js";

declare const API: string;
declare const VERSION: string;

abeServiceWorker({ url: API, precache: ["/", "/app.js", "/app.css"], version: VERSION });

// The test asks which version controls the page.
self.addEventListener("message", (e) => {
  if ((e as MessageEvent).data === "version") (e as MessageEvent).ports[0]?.postMessage(VERSION);
});
