// The console's entry: mount the app.
import { render } from "preact";
import { App } from "./app";
import "./style.css";
import "./screens.css";

render(<App />, document.getElementById("app")!);
