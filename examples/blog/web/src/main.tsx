import { AbeProvider } from "@abe-stack/sdk/react";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { abe } from "./abe.js";
import { App } from "./App.js";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <AbeProvider client={abe}>
      <App />
    </AbeProvider>
  </StrictMode>,
);
