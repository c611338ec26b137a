// The page of the service worker test: the SDK and its sw entry, as the global `abeSW`.
import * as core from "../src/index.js";
import * as sw from "../src/sw.js";

(globalThis as { abeSW?: unknown }).abeSW = { ...core, ...sw };
