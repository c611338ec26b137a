// The Collections screen: a placeholder until it is built (issue 17).

/** The Collections screen. */
export function Collections() {
  return (
    <section>
      <h1>Collections</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
