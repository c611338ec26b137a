// The Realtime screen: a placeholder until it is built (issue 17).

/** The Realtime screen. */
export function Realtime() {
  return (
    <section>
      <h1>Realtime</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
