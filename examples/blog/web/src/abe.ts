// The one client of the app. The API is served with the app (abe's
// hosting), so it lives at the page's origin. No offline store: live
// queries are kept in memory and by realtime for the page's life.
import { createClient, LocalStorageTokenStore } from "@abe-stack/sdk";
import type { Collections } from "./abe-types.js";

declare module "@abe-stack/sdk/react" {
  interface Register {
    collections: Collections;
  }
}

export const abe = createClient<Collections>({ url: location.origin, tokenStore: new LocalStorageTokenStore("abe-blog.session") });
