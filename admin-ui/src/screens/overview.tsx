// The Overview screen, the console's home: readiness per dependency, the
// last hour of requests and 5xx errors per minute (an inline SVG, no chart
// library), realtime connections and the job queue (GET /api/admin/overview).
import type { Overview as OverviewData } from "@abe-stack/sdk/admin";
import { useEffect } from "preact/hooks";
import { useSession } from "../session";
import { ErrorBanner } from "../ui/banner";
import { useLoad } from "../ui/hooks";
import { Time } from "../ui/table";

/** The Overview screen. */
export function Overview() {
  const { api } = useSession();
  const o = useLoad((signal) => api.overview({ signal }), []);
  // Refresh every 30 s while the screen is open: the chart is per minute.
  useEffect(() => {
    const t = setInterval(o.reload, 30_000);
    return () => clearInterval(t);
  }, [o.reload]);
  const d = o.data;
  return (
    <section class="overview">
      <div class="screen-head">
        <h1>Overview</h1>
        <button type="button" onClick={o.reload} disabled={o.loading}>
          Refresh
        </button>
      </div>
      <ErrorBanner error={o.error} />
      {d && (
        <>
          <p class="muted">
            abe {d.version}, up since <Time at={d.started_at} />
          </p>
          <div class="ov-grid">
            <Readiness ready={d.ready} />
            <div class="panel" aria-labelledby="ov-rt">
              <h2 id="ov-rt">Realtime</h2>
              <dl class="facts">
                <dt>Connections</dt>
                <dd data-testid="rt-connections">{d.realtime.connections}</dd>
                <dt>Subscriptions</dt>
                <dd data-testid="rt-subscriptions">{d.realtime.subscriptions}</dd>
              </dl>
            </div>
            <JobsPanel jobs={d.jobs} />
          </div>
          <Traffic minutes={d.http.minutes} />
        </>
      )}
    </section>
  );
}

function Readiness({ ready }: { ready: OverviewData["ready"] }) {
  return (
    <div class="panel" aria-labelledby="ov-ready">
      <h2 id="ov-ready">
        Readiness <span class={`status ${ready.status}`}>{ready.status}</span>
      </h2>
      <ul class="checks">
        {ready.checks.map((c) => (
          <li key={c.name}>
            <span class={`status ${c.status}`}>{c.status}</span> <strong>{c.name}</strong>
            {!c.required && <span class="muted"> (optional)</span>}
            <span class="muted"> {c.latency_ms} ms</span>
            {c.error && <div class="check-error">{c.error}</div>}
          </li>
        ))}
      </ul>
    </div>
  );
}

const JOB_STATES = ["available", "running", "scheduled", "retryable", "completed", "discarded", "cancelled"];

function JobsPanel({ jobs }: { jobs: OverviewData["jobs"] }) {
  return (
    <div class="panel" aria-labelledby="ov-jobs">
      <h2 id="ov-jobs">Jobs</h2>
      {!jobs ? (
        <p class="muted">The job queue is not running on this node.</p>
      ) : (
        <dl class="facts">
          {JOB_STATES.map((s) => (
            <>
              <dt key={s + "t"}>{s}</dt>
              <dd key={s}>{jobs[s] ?? 0}</dd>
            </>
          ))}
          <dt>Failures, last hour</dt>
          <dd class={(jobs.failures_last_hour ?? 0) > 0 ? "bad" : undefined}>{jobs.failures_last_hour ?? 0}</dd>
        </dl>
      )}
    </div>
  );
}

/** Requests per minute as bars, their 5xx part in red; a table for screen readers. */
function Traffic({ minutes }: { minutes: OverviewData["http"]["minutes"] }) {
  const W = 600;
  const H = 120;
  const n = Math.max(minutes.length, 60);
  const max = Math.max(1, ...minutes.map((m) => m.requests));
  const bw = W / n;
  const total = minutes.reduce((a, m) => a + m.requests, 0);
  const errors = minutes.reduce((a, m) => a + m.errors, 0);
  return (
    <div class="panel" aria-labelledby="ov-http">
      <h2 id="ov-http">Requests, last 60 minutes</h2>
      <p class="muted">
        Whole minutes, the one in progress once it ends: {total} requests, <span class={errors > 0 ? "bad" : undefined}>{errors} server errors (5xx)</span>; busiest minute {max === 1 && total === 0 ? 0 : max}.
      </p>
      <svg class="chart" viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${total} requests and ${errors} errors in the last hour`}>
        <line x1="0" y1={H - 0.5} x2={W} y2={H - 0.5} class="axis" />
        {minutes.map((m, i) => {
          const h = (m.requests / max) * (H - 4);
          const eh = (m.errors / max) * (H - 4);
          const x = (n - minutes.length + i) * bw;
          return (
            <g key={m.at}>
              <title>{`${new Date(m.at).toLocaleTimeString()}: ${m.requests} requests, ${m.errors} errors`}</title>
              <rect x={x + 0.5} y={H - h} width={Math.max(bw - 1, 1)} height={h} class="bar" />
              {m.errors > 0 && <rect x={x + 0.5} y={H - eh} width={Math.max(bw - 1, 1)} height={eh} class="bar-error" />}
            </g>
          );
        })}
      </svg>
      <div class="chart-legend muted">
        <span>
          <i class="swatch bar" /> requests
        </span>
        <span>
          <i class="swatch bar-error" /> 5xx errors
        </span>
        <span class="chart-span">60 min ago → now</span>
      </div>
    </div>
  );
}
