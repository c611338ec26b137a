// One post, live, with its comments.
import { useLiveRecord } from "@abe-stack/sdk/react";
import { useNames } from "../base/names.js";
import { Link } from "../base/route.js";
import type { Who } from "../base/session.js";
import { Comments } from "../comments/Comments.js";
import { PostActions } from "./actions.js";

export function PostView({ w, id }: { w: Who; id: string }) {
  const { record: post, source } = useLiveRecord("posts", id);
  const names = useNames("posts", post ? [post] : []);
  if (!post)
    return (
      <section className="card">
        <p>{source === "server" ? "This post does not exist, or it is a draft you may not see." : "Loading…"}</p>
        <Link to="/">All posts</Link>
      </section>
    );
  return (
    <>
      <article className="card">
        <p className="back">
          <Link to="/">← All posts</Link>
        </p>
        <h1>{post.title}</h1>
        <p className="byline">
          <span className={`status ${post.status}`}>{post.status}</span> by {post.author === w.user.id ? "you" : (names.get(post.author) ?? "…")}
          {" · "}{new Date(post.created_at).toLocaleString()}
                {post.author_email && <span className="email"> · {post.author_email}</span>}
        </p>
        {post.status === "draft" && <p className="muted">A draft: only you{post.author === w.user.id ? "" : "r author"} and moderators can see it.</p>}
        <div className="body">
          {(post.body ?? "").split(/\n{2,}/).map((para, i) => (
            <p key={i}>{para}</p>
          ))}
        </div>
        <PostActions w={w} post={post} onPage />
      </article>
      <Comments w={w} post={post} />
    </>
  );
}
