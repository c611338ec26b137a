// The posts a user may see, as one live query: the server's list rule
// gives everyone the published posts, authors their drafts too, and
// moderators every draft. The screen only sorts them into sections.
import { useLive } from "@abe-stack/sdk/react";
import type { PostsRecord } from "../abe-types.js";
import { useNames } from "../base/names.js";
import { Link } from "../base/route.js";
import type { Who } from "../base/session.js";
import { PostActions } from "./actions.js";

export function PostList({ w }: { w: Who }) {
  const { records, source } = useLive("posts", { sort: ["-created_at"] });
  const names = useNames("posts", records);
  const published = records.filter((p) => p.status === "published");
  const mine = records.filter((p) => p.status === "draft" && p.author === w.user.id);
  const others = records.filter((p) => p.status === "draft" && p.author !== w.user.id);
  const section = (title: string, posts: PostsRecord[], empty: string) => (
    <section aria-label={title}>
      <h2>{title}</h2>
      {posts.length === 0 ? (
        <p className="muted">{source === "server" ? empty : "Loading…"}</p>
      ) : (
        <ul className="posts">
          {posts.map((p) => (
            <li key={p.id} className="card post">
              <Link to={`/posts/${p.id}`} className="title">
                {p.title}
              </Link>
              <p className="byline">
                <span className={`status ${p.status}`}>{p.status}</span> by {p.author === w.user.id ? "you" : (names.get(p.author) ?? "…")}
                {" · "}{new Date(p.created_at).toLocaleDateString()}
                {p.author_email && p.author !== w.user.id && <span className="email"> · {p.author_email}</span>}
              </p>
              {p.status === "draft" && <PostActions w={w} post={p} />}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
  return (
    <>
      {section("Your drafts", mine, "No drafts. Write a post: it starts as a draft only you and moderators see.")}
      {w.moderates && section("Drafts waiting for a moderator", others, "Nobody's draft is waiting.")}
      {section("Published", published, "Nothing published yet.")}
    </>
  );
}
