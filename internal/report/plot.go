package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Series is one line of a LineChart: a sweep member's curve.
type Series struct {
	Name string
	X, Y []float64
	// Color and Style, in a chart with Grouped set, pick the line's colour
	// and its dash pattern and marker, so that lines sharing a value of one
	// axis (say the image tower) share a colour and those sharing the other
	// axes' values a style.
	Color, Style int
}

// RefLine is a labelled horizontal reference line (e.g. chance level).
type RefLine struct {
	Y     float64
	Label string
}

// LineChart overlays several series on one set of axes with a legend, as the
// LiT paper's warm-up figures do (one line per run).
type LineChart struct {
	Title, XLabel, YLabel string
	Series                []Series
	Refs                  []RefLine
	// Points draws a marker at every point (for short per-epoch curves).
	Points bool
	// YMin and YMax fix the y range when YMax > YMin (e.g. 0..1 for accuracy).
	YMin, YMax float64
	// FromZero starts the y axis at 0 (when YMin/YMax do not fix it).
	FromZero bool
	// Fraction marks y as a fraction in [0,1] (accuracy): ticks stop at 1,
	// the space above is left to the legend.
	Fraction bool
	// LegendBottom puts the legend in the lower right (for rising curves).
	LegendBottom bool
	// Grouped draws each series in its Color and Style instead of one
	// colour and marker per series.
	Grouped bool
	// IntegerX puts x ticks on whole numbers only (epochs: there is no
	// epoch 1.5).
	IntegerX bool
}

// integerTicks marks whole numbers only: every one on a short axis, else
// the default ticks that fall on whole numbers.
type integerTicks struct{}

// Ticks implements plot.Ticker.
func (integerTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	if hi-lo <= 12 {
		var ts []plot.Tick
		for v := lo; v <= hi; v++ {
			ts = append(ts, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
		}
		return ts
	}
	var ts []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(min, max) {
		if t.Value == math.Trunc(t.Value) {
			if t.Label != "" {
				t.Label = fmt.Sprintf("%.0f", t.Value)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// lineDashes is style i's dash pattern: solid, then dashes of clearly
// different rhythms (plotutil's finer patterns blur at 1.5 pt on a PNG).
func lineDashes(i int) []vg.Length {
	patterns := [][]vg.Length{
		nil,
		{vg.Points(6), vg.Points(3)},
		{vg.Points(1.5), vg.Points(2)},
		{vg.Points(8), vg.Points(2), vg.Points(1.5), vg.Points(2)},
	}
	return patterns[i%len(patterns)]
}

// palette is plotutil's dark palette: distinguishable lines on white.
func seriesColor(i int) color.Color { return plotutil.DarkColors[i%len(plotutil.DarkColors)] }

// chartSize is the size of every PNG: wide enough for a legend beside the data.
const chartW, chartH = 18 * vg.Centimeter, 11 * vg.Centimeter

// Save draws the chart into a PNG file at path (the parent folder is created).
func (c LineChart) Save(path string) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.XLabel
	p.Y.Label.Text = c.YLabel
	p.Add(plotter.NewGrid())
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for i, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("report: chart %q: series %q has %d x and %d y values", c.Title, s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			if math.IsNaN(s.Y[j]) || math.IsInf(s.Y[j], 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
			xmin, xmax = math.Min(xmin, s.X[j]), math.Max(xmax, s.X[j])
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("report: chart %q: series %q: %w", c.Title, s.Name, err)
		}
		colour, shape := i, i
		if c.Grouped {
			colour, shape = s.Color, s.Style
			l.Dashes = lineDashes(s.Style)
		}
		l.Color = seriesColor(colour)
		l.Width = vg.Points(1.5)
		p.Add(l)
		var sc *plotter.Scatter
		if c.Points {
			if sc, err = plotter.NewScatter(pts); err != nil {
				return fmt.Errorf("report: chart %q: series %q: %w", c.Title, s.Name, err)
			}
			sc.GlyphStyle.Color = seriesColor(colour)
			sc.GlyphStyle.Shape = plotutil.Shape(shape)
			sc.GlyphStyle.Radius = vg.Points(3)
			p.Add(sc)
		}
		if sc != nil {
			p.Legend.Add(s.Name, l, sc) // the legend shows the marker as well as the line
		} else {
			p.Legend.Add(s.Name, l)
		}
	}
	if math.IsInf(xmin, 1) {
		xmin, xmax = 0, 1
	}
	for i, r := range c.Refs {
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: r.Y}, {X: xmax, Y: r.Y}})
		if err != nil {
			return fmt.Errorf("report: chart %q: reference %q: %w", c.Title, r.Label, err)
		}
		l.Color = color.Gray{Y: 90}
		l.Width = vg.Points(1)
		l.Dashes = plotutil.Dashes(1 + i)
		p.Add(l)
		p.Legend.Add(r.Label, l)
	}
	if c.YMax > c.YMin {
		p.Y.Min, p.Y.Max = c.YMin, c.YMax
	} else if c.FromZero {
		p.Y.Min = 0
		if p.Y.Max <= 0 {
			p.Y.Max = 1
		}
		// Headroom above the data for the legend, one row per entry.
		p.Y.Max *= 1 + 0.08*float64(len(c.Series)+len(c.Refs))
	}
	if c.Fraction {
		p.Y.Tick.Marker = fractionTicks(math.Min(1, p.Y.Max))
	}
	if c.IntegerX {
		p.X.Tick.Marker = integerTicks{}
	}
	p.Legend.Top = !c.LegendBottom
	p.Legend.Padding = vg.Points(2)
	return save(p, path)
}

// BarGroup is one colour of a BarChart: a value per category.
type BarGroup struct {
	Name   string
	Values []float64
}

// BarChart draws grouped vertical bars: categories along x, one bar per group.
type BarChart struct {
	Title, YLabel string
	Categories    []string
	Groups        []BarGroup
	Refs          []RefLine
	// YMax fixes the top of the y axis when > 0 (e.g. 1 for accuracy).
	YMax float64
	// Labels prints each bar's value above it with this format (e.g. "%.2f"); "" for none.
	Labels string
}

// Save draws the chart into a PNG file at path (the parent folder is created).
func (c BarChart) Save(path string) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.Y.Label.Text = c.YLabel
	p.Add(plotter.NewGrid())
	n := len(c.Categories)
	ng := max(1, len(c.Groups))
	// Bars share 80% of the chart's width per category.
	slot := (chartW - 2*vg.Centimeter) / vg.Length(max(1, n))
	w := slot * 0.8 / vg.Length(ng)
	w = min(w, vg.Centimeter)
	for gi, g := range c.Groups {
		if len(g.Values) != n {
			return fmt.Errorf("report: chart %q: group %q has %d values for %d categories", c.Title, g.Name, len(g.Values), n)
		}
		bars, err := plotter.NewBarChart(plotter.Values(g.Values), w)
		if err != nil {
			return fmt.Errorf("report: chart %q: group %q: %w", c.Title, g.Name, err)
		}
		bars.Color = seriesColor(gi)
		bars.LineStyle.Width = 0
		bars.Offset = (vg.Length(gi) - vg.Length(ng-1)/2) * w
		p.Add(bars)
		if ng > 1 {
			p.Legend.Add(g.Name, bars)
		}
		if c.Labels != "" {
			var pts plotter.XYs
			var labels []string
			for i, v := range g.Values {
				pts = append(pts, plotter.XY{X: float64(i), Y: v})
				labels = append(labels, fmt.Sprintf(c.Labels, v))
			}
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
			if err != nil {
				return fmt.Errorf("report: chart %q: labels: %w", c.Title, err)
			}
			for i := range lb.TextStyle {
				lb.TextStyle[i].XAlign = draw.XCenter
				lb.TextStyle[i].Font.Size = vg.Points(7)
			}
			lb.Offset = vg.Point{X: bars.Offset, Y: vg.Points(2)}
			p.Add(lb)
		}
	}
	for i, r := range c.Refs {
		l, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: r.Y}, {X: float64(n) - 0.5, Y: r.Y}})
		if err != nil {
			return fmt.Errorf("report: chart %q: reference %q: %w", c.Title, r.Label, err)
		}
		l.Color = color.Gray{Y: 90}
		l.Dashes = plotutil.Dashes(1 + i)
		p.Add(l)
		p.Legend.Add(r.Label, l)
	}
	p.NominalX(c.Categories...)
	if n > 8 {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	p.Y.Min = 0
	if c.YMax > 0 {
		p.Y.Max = c.YMax
	}
	// Headroom above the tallest bar for the value labels and the legend rows.
	entries := len(c.Refs)
	if len(c.Groups) > 1 {
		entries += len(c.Groups)
	}
	p.Y.Max *= 1.1 + 0.075*float64(entries)
	if c.YMax == 1 {
		p.Y.Tick.Marker = fractionTicks(1)
	}
	p.Legend.Top = true
	return save(p, path)
}

// fractionTicks marks 0, 0.1, … up to top, labelling every other one (every
// one below 0.5), so an axis with legend headroom above 1 shows no tick past it.
func fractionTicks(top float64) plot.ConstantTicks {
	var ticks []plot.Tick
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		if v > top+1e-9 {
			break
		}
		label := ""
		if i%2 == 0 || top < 0.5 {
			label = fmt.Sprintf("%.1f", v)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

func save(p *plot.Plot, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	// Write beside, then rename: a reader never sees half a PNG.
	tmp := path + ".tmp.png"
	if err := p.Save(chartW, chartH, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("report: %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
