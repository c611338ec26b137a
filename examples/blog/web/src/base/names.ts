// Authors' names. An account shows others its id and name (through
// `expand`), never its email; live queries carry no expansions, so the
// names of the authors a screen shows are asked for once, in one list.
import { useEffect, useState } from "react";
import { abe } from "../abe.js";

const known = new Map<string, string>();

export function useNames(collection: "posts" | "comments", records: readonly { id: string; author: string }[]): Map<string, string> {
  const [, setTick] = useState(0);
  const missing = records.filter((r) => !known.has(r.author));
  const key = missing.map((r) => r.id).slice(0, 50).join(",");
  useEffect(() => {
    if (key === "") return;
    let alive = true;
    const ids = key.split(",");
    abe
      .records(collection)
      .list({ filter: `id in [${ids.map((id) => `'${id}'`).join(", ")}]`, fields: ["id", "author"], expand: "author", limit: ids.length })
      .then((page) => {
        for (const r of page.items) if (r.expand?.author) known.set(r.author, r.expand.author.name || "Someone");
        if (alive) setTick((t) => t + 1);
      })
      .catch(() => {}); // the names come with the next change
    return () => {
      alive = false;
    };
  }, [collection, key]);
  return known;
}
