package simulations

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// TestSpread_LeastMedianMostOfLiveNodes: the per-node plot draws, at each
// sample, the least, median and most active calls over the nodes alive
// then, not one line per node.
func TestSpread_LeastMedianMostOfLiveNodes(t *testing.T) {
	nan := math.NaN()
	nodes := [][]float64{
		{1, 5, nan, nan},
		{3, 2, nan, 7},
		{2, 9, nan, nan},
		{10, 4, nan, nan},
	}
	lo, mid, hi := spread(nodes)
	same := func(a, b []float64) bool {
		return slices.EqualFunc(a, b, func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) })
	}
	if want := []float64{1, 2, nan, 7}; !same(lo, want) {
		t.Errorf("least %v, want %v", lo, want)
	}
	if want := []float64{2.5, 4.5, nan, 7}; !same(mid, want) {
		t.Errorf("median %v, want %v", mid, want)
	}
	if want := []float64{10, 9, nan, 7}; !same(hi, want) {
		t.Errorf("most %v, want %v", hi, want)
	}
}

// TestRoomForLegend_LegendAboveEveryLine: in a comparison plot whose lines
// end at their highest (cumulative rejections), the legend in the top
// corner lies above every point, not over the lines.
func TestRoomForLegend_LegendAboveEveryLine(t *testing.T) {
	p := plot.New()
	p.Title.Text = "rejected calls (cumulative)"
	for i, name := range append([]string{Ours}, Baselines()...) {
		pts := plotter.XYs{{X: 0, Y: 0}, {X: 50, Y: float64(100 * i)}, {X: 100, Y: float64(400 + 200*i)}}
		if err := addLine(p, name, pts, plotutil.Color(i), vg.Points(1), nil); err != nil {
			t.Fatal(err)
		}
	}
	top := p.Y.Max
	roomForLegend(p)
	da := p.DataCanvas(draw.New(vgimg.New(plotWidth, plotHeight)))
	legendBottom := p.Legend.Rectangle(da).Min.Y
	if y := da.Min.Y + vg.Length(p.Y.Norm(top))*da.Size().Y; y >= legendBottom {
		t.Errorf("the highest point is drawn at %v, the legend's bottom at %v: the legend covers data", y, legendBottom)
	}
}
