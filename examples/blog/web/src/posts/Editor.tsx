// Write a post, or edit one's own. A new post is a draft; "publish now"
// is offered to everyone, and the server refuses it to all but
// moderators (the field rule on status holds on create too).
import { useLiveRecord } from "@abe-stack/sdk/react";
import { useEffect, useState, type FormEvent } from "react";
import { abe } from "../abe.js";
import { go } from "../base/route.js";
import type { Who } from "../base/session.js";
import { useAct } from "./actions.js";

export function Editor({ w, id }: { w: Who; id: string | null }) {
  const { record } = useLiveRecord("posts", id);
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [publish, setPublish] = useState(false);
  const [loaded, setLoaded] = useState(id === null);
  const { error, busy, act } = useAct(w);
  useEffect(() => {
    if (record && !loaded) {
      setTitle(record.title);
      setBody(record.body ?? "");
      setLoaded(true);
    }
  }, [record, loaded]);

  function submit(e: FormEvent) {
    e.preventDefault();
    const posts = abe.records("posts");
    if (id) {
      void act("edit", () => posts.update(id, { title, body })).then((ok) => ok && go(`/posts/${id}`));
      return;
    }
    let made = "";
    void act(publish ? "create-published" : "create", async () => {
      made = (await posts.create({ title, body, author: w.user.id, author_email: w.user.email, status: publish ? "published" : "draft" })).id;
    }).then((ok) => ok && go(`/posts/${made}`));
  }

  return (
    <form className="card editor" onSubmit={submit} aria-label={id ? "Edit the post" : "Write a post"}>
      <h1>{id ? "Edit the post" : "Write a post"}</h1>
      <label>
        Title
        <input value={title} onChange={(e) => setTitle(e.target.value)} maxLength={200} required />
      </label>
      <label>
        Text
        <textarea value={body} onChange={(e) => setBody(e.target.value)} rows={10} />
      </label>
      {!id && (
        <label className="check">
          <input type="checkbox" checked={publish} onChange={(e) => setPublish(e.target.checked)} />
          Publish now{w.moderates ? "" : " (moderators only: the server will refuse)"}
        </label>
      )}
      <div className="row">
        <button className="primary" disabled={busy}>
          {id ? "Save" : publish ? "Publish" : "Save draft"}
        </button>
        <button type="button" onClick={() => history.back()}>
          Cancel
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
