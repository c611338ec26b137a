import { AbeProvider } from "@abe-stack/sdk/react";
import { registerAbeServiceWorker } from "@abe-stack/sdk/sw";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { abe } from "./abe.js";
import { App } from "./App.js";
import "./styles.css";

// The service worker replays writes made offline once the network is
// back, even with every tab closed, and serves the app offline.
if (import.meta.env.PROD) registerAbeServiceWorker(abe, "/sw.js");

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <AbeProvider client={abe}>
      <App />
    </AbeProvider>
  </StrictMode>,
);
