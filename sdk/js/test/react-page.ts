// The page of test/react.test.ts, bundled by esbuild with React, react-dom
// and the SDK: a todo app written with the hooks of @abe-stack/sdk/react,
// in StrictMode, controlled by the test through its buttons and inputs.
import { createElement as h, StrictMode, useState } from "react";
import { createRoot } from "react-dom/client";
import type { Collections, TodosRecord } from "../../../engine/tstypes/testdata/todo.js";
import type { AbeClient } from "../src/client.js";
import { createClient, LocalStorageTokenStore } from "../src/index.js";
import type { LiveOptions, LiveResult } from "../src/offline.js";
import { AbeProvider, useLive, useLiveRecord, useUndo, useWrites } from "../src/react.js";

// The hooks that take their client from AbeProvider know the collections too.
declare module "../src/react.js" {
  interface Register {
    collections: Collections;
  }
}

/** What the page leaves on window for the test. */
export interface ReactApp {
  client: AbeClient<Collections>;
  /** List requests the client made. */
  lists: number;
  /** Subscriptions to the list's live query and their removals (one on each render would be a bug). */
  subscribes: number;
  unsubscribes: number;
  /** The distinct results useLive gave the list. */
  results: Set<LiveResult<unknown>>;
  /** Calls of history.undo and redo (by the buttons or the keys). */
  undos: number;
  redos: number;
  /** Logs in, then renders the app. */
  start(email: string, password: string): Promise<void>;
}
declare global {
  interface Window {
    reactApp: ReactApp;
  }
}

const params = new URLSearchParams(location.search);
const project = params.get("project") ?? "";
const client = createClient<Collections>({
  url: params.get("api") ?? "",
  tokenStore: new LocalStorageTokenStore(),
  offline: { backoff: { initial: 100, max: 500 } },
  fetch: (input, init) => {
    if ((init.method ?? "GET") === "GET" && new URL(input).pathname.endsWith("/records")) app.lists++;
    return fetch(input, init);
  },
});

/** The list's query: its filter runs on the client (compileFilter), no match given. */
const openTodos: LiveOptions<TodosRecord> = { filter: "done == false", sort: ["title"] };

function Todos(props: { tick: number }) {
  // A new options object on every render: still the same query.
  const live = useLive(client, "todos", { ...openTodos, sort: ["title"] });
  app.results.add(live);
  const writes = useWrites(client);
  return h(
    "ul",
    { id: "todos", "data-source": live.source, "data-pending": live.pending, "data-tick": props.tick },
    live.records.map((t) =>
      h("li", { key: t.id, "data-id": t.id }, h("span", null, t.title), h("button", { className: "done", onClick: () => writes.update("todos", t.id, { done: true }) }, "Done")),
    ),
  );
}

function Detail(props: { id: string }) {
  // The client from AbeProvider; the record typed by Register.
  const { record, source } = useLiveRecord("todos", props.id || null);
  return h("p", { id: "detail", "data-source": source }, record ? `${record.title}${record.done ? " (done)" : ""}` : "none");
}

function Toolbar() {
  const writes = useWrites();
  const { undo, redo, canUndo, canRedo } = useUndo();
  const [title, setTitle] = useState("");
  return h(
    "div",
    { id: "bar", "data-pending": writes.pending, "data-can-undo": String(canUndo), "data-can-redo": String(canRedo) },
    h("input", { id: "title", value: title, onChange: (e: { target: { value: string } }) => setTitle(e.target.value) }),
    h(
      "button",
      {
        id: "add",
        onClick: () => {
          writes.create("todos", { project, title });
          setTitle("");
        },
      },
      "Add",
    ),
    h("button", { id: "undo", disabled: !canUndo, onClick: () => void undo() }, "Undo"),
    h("button", { id: "redo", disabled: !canRedo, onClick: () => void redo() }, "Redo"),
  );
}

function Silent() {
  // No keys: were they bound here too, every Ctrl+Z would undo twice.
  const { canUndo } = useUndo(client, { shortcuts: false });
  return h("p", { id: "silent", "data-can-undo": String(canUndo) });
}

function App() {
  const [tick, setTick] = useState(0);
  const [list, setList] = useState(true);
  const [bar, setBar] = useState(true);
  const [detail, setDetail] = useState("");
  return h(
    AbeProvider<Collections>,
    { client },
    h("button", { id: "tick", onClick: () => setTick((t) => t + 1) }, "Tick"),
    h("button", { id: "toggle-list", onClick: () => setList((v) => !v) }, "List"),
    h("button", { id: "toggle-bar", onClick: () => setBar((v) => !v) }, "Bar"),
    h("input", { id: "detail-id", value: detail, onChange: (e: { target: { value: string } }) => setDetail(e.target.value) }),
    bar ? h(Toolbar) : null,
    list ? h(Todos, { tick }) : null,
    h(Detail, { id: detail }),
    h(Silent),
  );
}

const app: ReactApp = {
  client,
  lists: 0,
  results: new Set(),
  subscribes: 0,
  unsubscribes: 0,
  undos: 0,
  redos: 0,
  async start(email, password) {
    await client.auth.login({ email, password });
    // Counts what the hooks (and the keys they bind) ask of the history.
    const { history } = client;
    const undo = history.undo.bind(history);
    const redo = history.redo.bind(history);
    history.undo = () => (app.undos++, undo());
    history.redo = () => (app.redos++, redo());
    // The query the list will use (the client keeps one per filter, sort and limit).
    const live = client.live("todos", openTodos);
    const subscribe = live.subscribe.bind(live);
    live.subscribe = (fn) => {
      app.subscribes++;
      const off = subscribe(fn);
      return () => (app.unsubscribes++, off());
    };
    const root = document.createElement("div");
    document.body.append(root);
    createRoot(root).render(h(StrictMode, null, h(App)));
  },
};
window.reactApp = app;
