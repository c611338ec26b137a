// What each role may do, as abe.yaml's rules say: the signed-in user's
// abilities, and what is for others. The server enforces every line.
import type { Who } from "./base/session.js";

interface Ability {
  text: string;
  who: "everyone" | "moderator" | "admin";
  /** What the server does for others. */
  otherwise?: string;
}

const ABILITIES: Ability[] = [
  { text: "Read published posts and their comments", who: "everyone" },
  { text: "Write posts (they start as drafts) and see your own drafts", who: "everyone" },
  { text: "Comment on published posts", who: "everyone" },
  { text: "See everyone's drafts", who: "moderator", otherwise: "the server leaves them out" },
  { text: "Publish posts", who: "moderator", otherwise: "try it: the server refuses" },
  { text: "Hide and show comments", who: "moderator", otherwise: "try it: the server refuses" },
  { text: "See authors' email addresses", who: "admin", otherwise: "the server leaves them out" },
];

export function RolePanel({ w }: { w: Who }) {
  const role = w.admin ? "admin" : w.moderates ? "moderator" : "user";
  const may = (a: Ability) => a.who === "everyone" || (a.who === "moderator" && w.moderates) || (a.who === "admin" && w.admin);
  return (
    <section className="card roles" aria-label="What you can do">
      <h2>
        You are signed in as {role === "admin" ? "an" : "a"} <strong>{role}</strong>
      </h2>
      <ul>
        {ABILITIES.map((a) => (
          <li key={a.text} className={may(a) ? "yes" : "no"}>
            <span aria-hidden="true">{may(a) ? "✓" : "✕"}</span> {a.text}
            {!may(a) && (
              <em>
                {" "}
                ({a.who}s only; {a.otherwise})
              </em>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
