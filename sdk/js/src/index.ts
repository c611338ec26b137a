// @abe-stack/sdk: the TypeScript client of abe.
//
// Part A: the client (records, batch, changes), auth and token refresh,
// typed errors, operations, undo/redo. Part B: realtime, the record
// cache, the offline write queue.

/** The version of the SDK. */
export const VERSION = "0.1.0";

export * from "./errors.js";
export * from "./http.js";
export * from "./client.js";
export * from "./auth.js";
export * from "./coordinator.js";
export * from "./operations.js";
export * from "./undo.js";
export * from "./backoff.js";
export * from "./realtime.js";
export * from "./cache.js";
export * from "./queue.js";
export * from "./store.js";
export * from "./offline.js";
export * from "./filter.js";
