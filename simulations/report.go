package simulations

import (
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/switchboard-pbx/switchboard/placement"
)

// Report is report.json: ours' measures at the top level, each baseline's
// under baselines.<name>. Dashboards and scripts read these names.
type Report struct {
	Scenario         string  `json:"scenario"`
	Seed             uint64  `json:"seed"`
	Nodes            int     `json:"nodes"`
	Groups           int     `json:"groups"`
	Devices          int     `json:"devices"`
	CallsPerSecond   float64 `json:"calls_per_second"`
	StalenessSeconds float64 `json:"staleness_seconds"`
	Strategy         string  `json:"strategy"`
	Measures
	Baselines map[string]Measures `json:"baselines"`
}

// Report returns the JSON report of r.
func (r *Result) Report() Report {
	nodes := 0
	for _, p := range r.Scenario.Pools {
		nodes += p.Nodes
	}
	rep := Report{
		Scenario: r.Scenario.Name, Seed: r.Seed, Nodes: nodes, Groups: r.Scenario.Groups, Devices: r.Devices,
		CallsPerSecond: round4(r.Rate), StalenessSeconds: r.Scenario.StalenessSeconds,
		Strategy: fmt.Sprintf("tier 1 ChoosePool; tier 2 PowerOfTwo with overflow on %gs-stale load plus optimistic increments, a full node's refusal retried up to %d times; device groups by BoundedLoad(eps %g); no move on join",
			r.Scenario.StalenessSeconds, placement.MaxFullRefusals, r.Scenario.ActivationEpsilon),
		Baselines: map[string]Measures{},
	}
	for _, m := range r.Modes {
		if m.Name == Ours {
			rep.Measures = m.Measures
		} else {
			rep.Baselines[m.Name] = m.Measures
		}
	}
	return rep
}

// JSON is report.json's bytes: the same seed gives the same bytes.
func (r *Result) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r.Report(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Files written by Write.
const (
	FileJSON     = "report.json"
	FileMarkdown = "report.md"
)

// Write writes report.json, report.md and the PNG plots into dir, creating
// it, and returns the paths written.
func (r *Result) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("simulations: create output folder: %w", err)
	}
	b, err := r.JSON()
	if err != nil {
		return nil, err
	}
	var paths []string
	write := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		paths = append(paths, p)
		return os.WriteFile(p, data, 0o644)
	}
	if err := write(FileJSON, b); err != nil {
		return nil, err
	}
	plots, err := r.plots(dir)
	if err != nil {
		return nil, err
	}
	if err := write(FileMarkdown, []byte(r.Markdown(plots))); err != nil {
		return nil, err
	}
	return append(paths, plots...), nil
}

// Markdown is report.md: the measures of ours beside each baseline, and the
// plots (file paths relative to the report).
func (r *Result) Markdown(plots []string) string {
	rep := r.Report()
	var b strings.Builder
	fmt.Fprintf(&b, "# Simulation: %s (seed %d)\n\n", rep.Scenario, rep.Seed)
	if r.Scenario.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", r.Scenario.Description)
	}
	fmt.Fprintf(&b, "%d nodes in %d pools, %d device groups (%d devices, Zipf sizes), %d calls at %.1f/s, mean hold %gs, load figures %gs stale.\n\n",
		rep.Nodes, len(r.Scenario.Pools), rep.Groups, rep.Devices, rep.CallsTotal, rep.CallsPerSecond,
		r.Scenario.MeanHoldSeconds, rep.StalenessSeconds)
	fmt.Fprintf(&b, "Ours: %s.\n\n", rep.Strategy)
	fmt.Fprintf(&b, "| measure | target | ours | %s |\n|---|---|---|%s\n",
		strings.Join(Baselines(), " | "), strings.Repeat("---|", len(Baselines())))
	rows := []struct {
		name, target string
		get          func(Measures) string
	}{
		{"max/mean activations per node", "<= 1.03", func(m Measures) string { return fmt.Sprintf("%.4f", m.MaxMeanActivations) }},
		{"mean activations per node", ">= 1000", func(m Measures) string { return fmt.Sprintf("%.0f", m.MeanActivationsPerNode) }},
		{"max/mean active calls in a pool (time average)", "<= 1.10", func(m Measures) string { return fmt.Sprintf("%.4f", m.MaxMeanCalls) }},
		{"max/mean active calls, peak sample", "", func(m Measures) string { return fmt.Sprintf("%.4f", m.MaxMeanCallsPeak) }},
		{"live actors moved on join / (m/(n+1))", "0 (none is moved)", func(m Measures) string {
			if m.MovedOnJoinRatio == nil {
				return "n/a"
			}
			return fmt.Sprintf("%s (%d)", OrNA(m.MovedOnJoinRatio, "%.4f"), m.MovedOnJoin)
		}},
		{"a joined node reaches 90% of its pool's mean active calls", "", func(m Measures) string {
			if m.JoinsBelow90 > 0 {
				return fmt.Sprintf("%d joined nodes never did", m.JoinsBelow90)
			}
			return OrNA(m.JoinTo90Seconds, "%.0f s")
		}},
		{"rejected with headroom", "0", func(m Measures) string { return fmt.Sprint(m.RejectedWithHeadroom) }},
		{"rejected", "", func(m Measures) string { return fmt.Sprint(m.Rejected) }},
		{"overflowed", "", func(m Measures) string { return fmt.Sprint(m.Overflowed) }},
		{"refused by a full node (stale figures)", "", func(m Measures) string { return fmt.Sprint(m.Refused) }},
		{"dropped with a crashed node", "", func(m Measures) string { return fmt.Sprint(m.Dropped) }},
		{"group pool changes", "", func(m Measures) string { return fmt.Sprint(m.GroupPoolChanges) }},
		{"calls", "", func(m Measures) string { return fmt.Sprint(m.CallsTotal) }},
	}
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |", row.name, row.target, row.get(rep.Measures))
		for _, name := range Baselines() {
			fmt.Fprintf(&b, " %s |", row.get(rep.Baselines[name]))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nThe same workload (seed) drives every column. Baselines place device-group actors and calls with\n" +
		"one strategy over the group's pool, without overflow; a full node refuses the call. On a join, ours (as the\n" +
		"runtime) moves no live actor: new work lands on the joined node by placement; plain rendezvous moves the actors\n" +
		"the newcomer now owns, as protoactor-go's disthash does.\n\n")
	for _, p := range plots {
		name := filepath.Base(p)
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(name, ".png"), name)
	}
	fmt.Fprintf(&b, "Replay: `%s`\n", r.Scenario.Replay(rep.Seed))
	return b.String()
}

// OrNA formats v with format, or says "n/a" when v is nil: a measure that
// does not apply, such as moves on join in a scenario without a join.
func OrNA(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

// Size of the PNG plots.
const plotWidth, plotHeight = 10 * vg.Inch, 5 * vg.Inch

// plots writes the PNGs and returns their paths.
func (r *Result) plots(dir string) ([]string, error) {
	var paths []string
	save := func(p *plot.Plot, name string) error {
		path := filepath.Join(dir, name)
		roomForLegend(p)
		if err := p.Save(plotWidth, plotHeight, path); err != nil {
			return fmt.Errorf("simulations: plot %s: %w", name, err)
		}
		paths = append(paths, path)
		return nil
	}
	for _, m := range r.Modes {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: active calls per node, %d nodes (%s, seed %d)", m.Name, len(m.Series.NodeCalls), r.Scenario.Name, r.Seed)
		lo, mid, hi := spread(m.Series.NodeCalls)
		band, err := plotter.NewPolygon(append(xys(m.Series.Times, lo), reversed(xys(m.Series.Times, hi))...))
		if err != nil {
			return nil, err
		}
		band.Color, band.LineStyle.Width = color.RGBA{R: 200, G: 210, B: 235, A: 255}, 0
		p.Add(band)
		for _, l := range []struct {
			name string
			ys   []float64
			c    color.Color
		}{{"max", hi, color.RGBA{R: 200, A: 255}}, {"median", mid, color.Black}, {"min", lo, color.RGBA{B: 200, A: 255}}} {
			if err := addLine(p, l.name, xys(m.Series.Times, l.ys), l.c, vg.Points(1.2), nil); err != nil {
				return nil, err
			}
		}
		if err := save(p, "calls-per-node-"+m.Name+".png"); err != nil {
			return nil, err
		}
	}
	for _, spec := range []struct {
		file, title, y string
		get            func(Series) []float64
	}{
		{"max-mean-calls.png", "worst pool's max/mean active calls", "max/mean", func(s Series) []float64 { return s.MaxMeanCalls }},
		{"rejected-calls.png", "rejected calls (cumulative)", "calls", func(s Series) []float64 { return s.Rejected }},
	} {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s (%s, seed %d)", spec.title, r.Scenario.Name, r.Seed)
		p.Y.Label.Text = spec.y
		for i, m := range r.Modes {
			c, w := plotutil.Color(i), vg.Points(1.2)
			if m.Name == Ours {
				c, w = color.RGBA{R: 200, A: 255}, vg.Points(2)
			}
			if err := addLine(p, m.Name, xys(m.Series.Times, spec.get(m.Series)), c, w, plotutil.Dashes(i)); err != nil {
				return nil, err
			}
		}
		if err := save(p, spec.file); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// addLine adds a line and its legend entry, with the legend at the top.
func addLine(p *plot.Plot, name string, pts plotter.XYs, c color.Color, w vg.Length, dashes []vg.Length) error {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	l.Color, l.Width, l.Dashes = c, w, dashes
	p.Add(l)
	p.Legend.Add(name, l)
	p.Legend.Top = true
	if p.X.Label.Text == "" {
		p.X.Label.Text = "virtual seconds"
	}
	if p.Y.Label.Text == "" {
		p.Y.Label.Text = "active calls"
	}
	return nil
}

// roomForLegend raises p's y axis, once every line is added, so that the
// legend, drawn in the top corner of the plot, sits above every line
// instead of over some.
func roomForLegend(p *plot.Plot) {
	da := p.DataCanvas(draw.New(vgimg.New(plotWidth, plotHeight)))
	legend := p.Legend.Rectangle(da).Size().Y + p.Legend.TextStyle.Font.Size/2 // and a gap below it
	if free := 1 - float64(legend/da.Size().Y); free > 0.2 {
		p.Y.Max = p.Y.Min + (p.Y.Max-p.Y.Min)/free
	}
}

// spread is, at each sample, the least, median and most of the nodes'
// values that are not NaN (a node dead or not yet joined); NaN where none
// is.
func spread(nodes [][]float64) (lo, mid, hi []float64) {
	samples := 0
	for _, ys := range nodes {
		samples = max(samples, len(ys))
	}
	lo, mid, hi = nanSlice(samples), nanSlice(samples), nanSlice(samples)
	vs := make([]float64, 0, len(nodes))
	for i := range samples {
		vs = vs[:0]
		for _, ys := range nodes {
			if i < len(ys) && !math.IsNaN(ys[i]) {
				vs = append(vs, ys[i])
			}
		}
		if len(vs) == 0 {
			continue
		}
		slices.Sort(vs)
		lo[i], hi[i] = vs[0], vs[len(vs)-1]
		mid[i] = (vs[(len(vs)-1)/2] + vs[len(vs)/2]) / 2
	}
	return lo, mid, hi
}

// reversed is pts in reverse order, the far edge of a band's polygon.
func reversed(pts plotter.XYs) plotter.XYs {
	out := slices.Clone(pts)
	slices.Reverse(out)
	return out
}

// xys pairs times and values, skipping NaN (dead node, unsampled).
func xys(ts, vs []float64) plotter.XYs {
	out := make(plotter.XYs, 0, len(ts))
	for i, t := range ts {
		if i < len(vs) && !math.IsNaN(vs[i]) {
			out = append(out, plotter.XY{X: t, Y: vs[i]})
		}
	}
	if len(out) == 0 {
		out = append(out, plotter.XY{})
	}
	return out
}
