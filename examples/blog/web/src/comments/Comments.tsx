// A post's comments, live. A hidden comment stays in the list without its
// text for everyone but its author and moderators (the field rule on
// body), so an open page hears at once that it was hidden.
import { useLive } from "@abe-stack/sdk/react";
import { useState, type FormEvent } from "react";
import type { CommentsRecord, PostsRecord } from "../abe-types.js";
import { abe } from "../abe.js";
import { useNames } from "../base/names.js";
import type { Who } from "../base/session.js";
import { useAct } from "../posts/actions.js";

export function Comments({ w, post }: { w: Who; post: PostsRecord }) {
  const { records } = useLive("comments", { filter: `post == '${post.id}'`, sort: ["created_at"] });
  const names = useNames("comments", records);
  const [text, setText] = useState("");
  const { error, busy, act } = useAct(w);

  function submit(e: FormEvent) {
    e.preventDefault();
    void act("comment", () => abe.records("comments").create({ post: post.id, author: w.user.id, body: text })).then((ok) => ok && setText(""));
  }

  return (
    <section className="card" aria-label="Comments">
      <h2>Comments</h2>
      {records.length === 0 && <p className="muted">No comments yet.</p>}
      <ul className="comments">
        {records.map((c) => (
          <Comment key={c.id} w={w} c={c} name={c.author === w.user.id ? "you" : (names.get(c.author) ?? "…")} />
        ))}
      </ul>
      {post.status === "published" ? (
        <form onSubmit={submit}>
          <label>
            Your comment
            <textarea value={text} onChange={(e) => setText(e.target.value)} rows={3} maxLength={2000} required />
          </label>
          <button className="primary" disabled={busy}>
            Comment
          </button>
        </form>
      ) : (
        <p className="muted">Comments open once the post is published.</p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

function Comment({ w, c, name }: { w: Who; c: CommentsRecord; name: string }) {
  const { error, busy, act } = useAct(w);
  const comments = abe.records("comments");
  return (
    <li className={`comment${c.hidden ? " hidden" : ""}`}>
      <p className="byline">
        {name} · {new Date(c.created_at).toLocaleString()}
        {c.hidden && <span className="status draft">hidden</span>}
      </p>
      {c.body === undefined ? <p className="muted">Hidden by a moderator.</p> : <p>{c.body}</p>}
      {c.author !== w.user.id && (
        <button
          className={`small${w.moderates ? "" : " gated"}`}
          disabled={busy}
          onClick={() => void act(c.hidden ? "show" : "hide", () => comments.update(c.id, { hidden: !c.hidden }))}
        >
          {c.hidden ? "Show" : "Hide"}
          {w.moderates ? "" : " (moderators)"}
        </button>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </li>
  );
}
