// The Roles screen: a placeholder until it is built (issue 17).

/** The Roles screen. */
export function Roles() {
  return (
    <section>
      <h1>Roles</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
