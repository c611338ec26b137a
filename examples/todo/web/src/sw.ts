// The service worker, bundled to dist/sw.js by vite.config.ts with the
// list of built files: they are precached and served offline, and the
// queue of a tab closed offline is replayed by Background Sync.
import { abeServiceWorker } from "@abe-stack/sdk/sw";

declare const __PRECACHE__: string[];
declare const __VERSION__: string;

abeServiceWorker({ url: self.location.origin, precache: __PRECACHE__, version: __VERSION__, navigateFallback: "/" });
