// What can be done to a post, offered to whoever might: the author and
// moderators. A button a role may not use is marked so; pressing it
// anyway shows the server's refusal in plain words.
import { useState } from "react";
import type { PostsRecord } from "../abe-types.js";
import { abe } from "../abe.js";
import { inWords, type Action } from "../base/refusals.js";
import { go } from "../base/route.js";
import type { Who } from "../base/session.js";

export function useAct(w: Who) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function act(action: Action, fn: () => Promise<unknown>): Promise<boolean> {
    setBusy(true);
    setError("");
    try {
      await fn();
      return true;
    } catch (e) {
      setError(inWords(e, action, w));
      return false;
    } finally {
      setBusy(false);
    }
  }
  return { error, busy, act };
}

export function PostActions({ w, post, onPage }: { w: Who; post: PostsRecord; onPage?: boolean }) {
  const { error, busy, act } = useAct(w);
  const mine = post.author === w.user.id;
  const posts = abe.records("posts");
  const gated = w.moderates ? "" : " gated";
  return (
    <div className="actions">
      <div className="row">
        {post.status === "draft" ? (
          <button className={`small${gated}`} disabled={busy} onClick={() => void act("publish", () => posts.update(post.id, { status: "published" }))}>
            Publish{w.moderates ? "" : " (moderators)"}
          </button>
        ) : (
          w.moderates && (
            <button className="small" disabled={busy} onClick={() => void act("unpublish", () => posts.update(post.id, { status: "draft" }))}>
              Back to draft
            </button>
          )
        )}
        {mine && onPage && (
          <button className="small" onClick={() => go(`/posts/${post.id}/edit`)}>
            Edit
          </button>
        )}
        {(mine || w.moderates) && onPage && (
          <button
            className="small danger"
            disabled={busy}
            onClick={() => void act("delete", () => posts.delete(post.id)).then((ok) => ok && go("/"))}
          >
            Delete
          </button>
        )}
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
