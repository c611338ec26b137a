// The Playground screen: a placeholder until it is built (issue 17).

/** The Playground screen. */
export function Playground() {
  return (
    <section>
      <h1>Playground</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
