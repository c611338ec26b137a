// Online or offline, and how many changes wait to reach the server.
import { useWrites } from "@abe-stack/sdk/react";
import { useSyncExternalStore } from "react";

const onLine = (l: () => void) => {
  window.addEventListener("online", l);
  window.addEventListener("offline", l);
  return () => {
    window.removeEventListener("online", l);
    window.removeEventListener("offline", l);
  };
};

export function SyncStatus() {
  const online = useSyncExternalStore(onLine, () => navigator.onLine);
  const { pending } = useWrites();
  const waiting = pending === 1 ? "1 change" : `${pending} changes`;
  const [cls, text] = !online
    ? ["offline", pending ? `Offline · ${waiting} not sent yet` : "Offline · changes are kept here"]
    : pending
      ? ["pending", `Saving ${waiting}…`]
      : ["saved", "All changes saved"];
  return (
    <span className={`sync ${cls}`} role="status" aria-live="polite" data-pending={pending}>
      <span className="dot" aria-hidden="true" />
      {text}
    </span>
  );
}
