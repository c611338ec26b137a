// The Users screen: a placeholder until it is built (issue 17).

/** The Users screen. */
export function Users() {
  return (
    <section>
      <h1>Users</h1>
      <p class="muted">Coming soon.</p>
    </section>
  );
}
