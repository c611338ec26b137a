package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abe-stack/abe/rules"
)

// printSQL shows the list statement abe builds from the list rule beside
// the ceiling's, so a reader can check that they are the same query.
func printSQL(w io.Writer, userID string) error {
	cfg, err := loadConfig("postgres://unused")
	if err != nil {
		return err
	}
	eng, err := rules.Compile(cfg, nil)
	if err != nil {
		return fmt.Errorf("compile the rules: %w", err)
	}
	q := &rules.SQL{}
	pred, err := eng.ListPredicate("todos", &rules.SQLInput{Auth: &rules.Principal{ID: userID}}, q)
	if err != nil {
		return fmt.Errorf("translate the list rule: %w", err)
	}
	fmt.Fprintf(w, "list rule as SQL (abe):  WHERE %s  %v\nthe ceiling's list:      %s51\n", pred, q.Args, listSQL)
	return nil
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// figures are the medians over rounds of one operation on one server.
type figures struct {
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // server CPU per request
	errs     int
}

func summarize(ps []*phase) figures {
	var rps []float64
	var p50, p99, cpu []time.Duration
	f := figures{}
	for _, p := range ps {
		rps = append(rps, p.rps())
		p50 = append(p50, p.pct(50))
		p99 = append(p99, p.pct(99))
		cpu = append(cpu, p.cpuPerReq())
		f.errs += p.errs
	}
	f.rps, f.p50, f.p99, f.cpu = median(rps), median(p50), median(p99), median(cpu)
	return f
}

// report prints the results as markdown tables.
func report(o options, res results, abeSrv, ceilSrv *server) {
	w := o.out
	fmt.Fprintf(w, "\n%d connections, %d rounds of %s per operation and server. req/s, latencies and CPU are medians over rounds; "+
		"a ratio is the median over rounds of abe's figure over the ceiling's in the same round (the two ran back to back), with its range:\n\n",
		o.conns, o.rounds, o.duration)
	if o.rounds%2 == 1 {
		fmt.Fprintf(w, "(with an odd number of rounds abe went first once more often than the ceiling)\n\n")
	}
	fmt.Fprintln(w, "| operation | abe req/s | ceiling req/s | abe / ceiling (range) | target | abe p50 | ceiling p50 | abe p99 | ceiling p99 | p99 abe / ceiling (range) | target | errors (abe, ceiling) | met | server CPU/req (abe, ceiling) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, name := range o.ops {
		a, c := summarize(res[name]["abe"]), summarize(res[name]["ceiling"])
		target, p99Target := opByName(name).target, opByName(name).p99
		rr, pr := pairedRatios(res[name]["abe"], res[name]["ceiling"])
		ratio, p99 := median(rr), median(pr)
		met := "yes"
		switch {
		case ratio < target && p99 > p99Target:
			met = "no (throughput, p99)"
		case ratio < target:
			met = "no (throughput)"
		case p99 > p99Target:
			met = "no (p99)"
		case a.errs > 0:
			met = "no (errors)"
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | **%.3f** (%s) | ≥ %.2f | %s | %s | %s | %s | **%.3f** (%s) | ≤ %.1f | %d, %d | %s | %s, %s |\n",
			name, a.rps, c.rps, ratio, span(rr), target, ms(a.p50), ms(c.p50), ms(a.p99), ms(c.p99), p99, span(pr), p99Target,
			a.errs, c.errs, met, us(a.cpu), us(c.cpu))
	}

	var disturbed []string
	total := 0
	for _, name := range o.ops {
		for _, srv := range []string{"abe", "ceiling"} {
			for _, p := range res[name][srv] {
				total++
				if d := p.disturbance(); d != "" {
					disturbed = append(disturbed, fmt.Sprintf("round %d %s %s:%s", p.round, name, srv, strings.TrimPrefix(d, "  DISTURBED:")))
				}
			}
		}
	}
	fmt.Fprintf(w, "\nPhases during which the Postgres server checkpointed or served other databases: %d of %d\n", len(disturbed), total)
	for _, d := range disturbed {
		fmt.Fprintln(w, "  "+d)
	}

	fmt.Fprintln(w, "\nMemory of the server processes (VmRSS at the end of each phase, highest over rounds; VmHWM at the end of the run):")
	fmt.Fprintln(w)
	header, rule := "| server |", "|---|"
	for _, name := range o.ops {
		header += " after " + name + " |"
		rule += "---|"
	}
	fmt.Fprintln(w, header+" peak sampled | VmHWM |")
	fmt.Fprintln(w, rule+"---|---|")
	for _, s := range []*server{abeSrv, ceilSrv} {
		line := "| " + s.name + " |"
		var peak int64
		for _, name := range o.ops {
			var rss int64
			for _, p := range res[name][s.name] {
				rss = max(rss, p.rss)
				peak = max(peak, p.peakRSS)
			}
			line += " " + mib(rss) + " |"
		}
		fmt.Fprintln(w, line+" "+mib(peak)+" | "+mib(s.memory("VmHWM"))+" |")
	}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// pairedRatios are abe's throughput and p99 over the ceiling's, round by
// round. In a round the two servers ran one after the other, so a round's
// ratio is the least disturbed by the drift of a shared machine.
func pairedRatios(abe, ceil []*phase) (rps, p99 []float64) {
	for i := range min(len(abe), len(ceil)) {
		rps = append(rps, abe[i].rps()/ceil[i].rps())
		p99 = append(p99, float64(abe[i].pct(99))/float64(ceil[i].pct(99)))
	}
	return rps, p99
}

// span is "min–max" of xs.
func span(xs []float64) string {
	if len(xs) == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(slices.Min(xs), 'f', 2, 64) + "–" + strconv.FormatFloat(slices.Max(xs), 'f', 2, 64)
}

func us(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
}

func mib(b int64) string {
	if b == 0 {
		return "n/a"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 0, 64) + " MiB"
}
