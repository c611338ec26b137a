// The Jobs screen: a placeholder until it is built (issue 17).

/** The Jobs screen. */
export function Jobs() {
  return (
    <section>
      <h1>Jobs</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
