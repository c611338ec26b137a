// The Events screen: a placeholder until it is built (issue 17).

/** The Events screen. */
export function Events() {
  return (
    <section>
      <h1>Events</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
