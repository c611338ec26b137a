// The Overview screen: a placeholder until it is built (issue 17).

/** The Overview screen. */
export function Overview() {
  return (
    <section>
      <h1>Overview</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
