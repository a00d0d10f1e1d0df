package main

import (
	"regexp"
	"strings"
)

// Training is issue 11's section of the report: the LiT step's figures
// (BenchmarkLiT, in the train_bench part) against the PyTorch peer of the
// same run and the targets, the peak device memory at batch 4096
// and 16384, the ablations (CUDA graphs, trimming), and the GPU trainer's
// tests from the towers_tests part (trajectory parity with the fixture,
// agreement with the CPU trainer, memory, graphs, out of memory).
type Training struct {
	Status string `json:"status"`
	// Cases are BenchmarkLiT's sub-benchmarks' figures by name (ctx32,
	// ctx32-graphs, ctx77, ctx77-notrim, ctx77-bs16384).
	Cases map[string]Metrics `json:"cases"`
	// PeakGiB is the device memory litcache held at its peak, by batch size.
	PeakGiB   map[string]*float64 `json:"peak_device_GiB"`
	Fits16384 *bool               `json:"batch_16384_fits"`
	// Parity is the fixture's trajectory: the worst per-step relative error
	// of the loss curve and the worst tensor after the last step.
	Parity []ParityFigure `json:"trajectory_parity"`
	// Tests are the trainer's tests (TestTrain*) with their measured lines.
	Tests []TrainTest `json:"tests"`
}

// ParityFigure is one precision's run of the training fixture on the GPU.
type ParityFigure struct {
	Test          string   `json:"test"`
	Status        string   `json:"status"`
	LossCurve     *float64 `json:"loss_curve_max_rel_err"`
	LossBound     *float64 `json:"loss_bound"`
	FinalWeights  *float64 `json:"final_weights_max_rel_err,omitempty"`
	FinalTensor   string   `json:"final_worst_tensor,omitempty"`
	StepGradients *float64 `json:"step0_gradients_max_rel_err,omitempty"`
}

// TrainTest is a trainer test's outcome and what it measured.
type TrainTest struct {
	Name     string   `json:"name"`
	Status   string   `json:"status"`
	MaxErr   *float64 `json:"max_rel_err,omitempty"`
	Measured []string `json:"measured,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// trainTarget is issue 11's absolute target for the LiT step.
const trainTarget = 60000

var (
	reLossCurve = regexp.MustCompile(`loss curve over \d+ steps: relative error ([-+0-9.eE]+|NaN) \(bound ([-+0-9.eE]+)\)`)
	reFinal     = regexp.MustCompile(`train_final_weights\.safetensors: worst tensor (\S*): relative error ([-+0-9.eE]+|NaN)`)
	reGrads0    = regexp.MustCompile(`train_grads_step0\.safetensors: worst tensor (\S*): relative error ([-+0-9.eE]+|NaN)`)
	reMeasured  = regexp.MustCompile(`relative (error|difference)|device memory after|error: `)
)

// training builds the section from the parsed tests and benchmarks.
func training(tests []*Test, bench map[string]Metrics, part *Part) *Training {
	tr := &Training{Status: "measured", Cases: map[string]Metrics{}, PeakGiB: map[string]*float64{}}
	for name, m := range bench {
		if c, ok := strings.CutPrefix(name, "BenchmarkLiT/"); ok {
			tr.Cases[c] = m
		}
	}
	tr.PeakGiB["4096"] = metric(bench, "BenchmarkLiT/ctx32", "peak-GiB")
	tr.PeakGiB["16384"] = metric(bench, "BenchmarkLiT/ctx77-bs16384", "peak-GiB")
	if tr.PeakGiB["16384"] != nil {
		ok := true
		tr.Fits16384 = &ok
	}
	for _, t := range tests {
		if t.Name == "BenchmarkLiT/ctx77-bs16384" && t.Status == "fail" {
			no := false
			tr.Fits16384 = &no
		}
		if !strings.HasPrefix(t.Name, "TestTrain") {
			continue
		}
		tt := TrainTest{Name: t.Name, Status: t.Status, MaxErr: t.MaxErr}
		for _, l := range t.log {
			if reMeasured.MatchString(l) && len(tt.Measured) < 24 {
				tt.Measured = append(tt.Measured, l)
			}
		}
		if t.Status != "pass" {
			tt.Detail = t.Detail
		}
		tr.Tests = append(tr.Tests, tt)
		if strings.HasPrefix(t.Name, "TestTrainFixture/") {
			pf := ParityFigure{Test: t.Name, Status: t.Status}
			for _, l := range t.log {
				if m := reLossCurve.FindStringSubmatch(l); m != nil {
					pf.LossCurve, pf.LossBound = ptr(mustFloat(m[1])), ptr(mustFloat(m[2]))
				}
				if m := reFinal.FindStringSubmatch(l); m != nil {
					pf.FinalTensor, pf.FinalWeights = m[1], ptr(mustFloat(m[2]))
				}
				if m := reGrads0.FindStringSubmatch(l); m != nil {
					pf.StepGradients = ptr(mustFloat(m[2]))
				}
			}
			tr.Parity = append(tr.Parity, pf)
		}
	}
	switch {
	case part == nil || part.Status == "not run":
		tr.Status = "train_bench did not run"
	case len(tr.Cases) == 0:
		tr.Status = "no LiT figures: train_bench " + part.Status
	case part.Status != "ok":
		tr.Status = "partly measured: train_bench " + part.Status
	}
	return tr
}

// trainComparisons sets the LiT step beside the peer, the absolute
// target and the GEMM ceiling, and the ablations.
func trainComparisons(bench map[string]Metrics) []Comparison {
	var out []Comparison
	for _, c := range []struct {
		ctx, peer string
		target    float64
	}{{"32", "hf_lit_text12x512_ctx32_bs4096_samples_per_s", 0}, {"77", "hf_lit_text12x512_ctx77_bs4096_samples_per_s", 0}} {
		ours := metric(bench, "BenchmarkLiT/ctx"+c.ctx, "samples/s")
		cm := Comparison{Name: "LiT step samples/s at ctx " + c.ctx + " vs the issue's 60,000", Ours: ours,
			OursWhat: "BenchmarkLiT/ctx" + c.ctx + " samples/s", Ref: ptr(trainTarget), RefWhat: "issue 11's target", Target: 1}
		cm.Ratio = ratio(ours, cm.Ref)
		if cm.Ratio != nil {
			ok := *cm.Ratio >= 1
			cm.MeetsGoal = &ok
		}
		out = append(out, cm)
	}
	ceil := metric(bench, "BenchmarkGEMMBF16", "TFLOP/s")
	cm := Comparison{Name: "LiT step model TFLOP/s at ctx 32 vs the GEMM ceiling", Ours: metric(bench, "BenchmarkLiT/ctx32", "TFLOP/s"),
		OursWhat: "BenchmarkLiT/ctx32 TFLOP/s (the tokens run)", Ref: ceil, RefWhat: "BenchmarkGEMMBF16 TFLOP/s"}
	cm.Ratio = ratio(cm.Ours, cm.Ref)
	out = append(out, cm)
	for _, ab := range []struct{ name, ours, ref string }{
		{"LiT step CUDA graphs on vs off ablation (samples/s)", "BenchmarkLiT/ctx32-graphs", "BenchmarkLiT/ctx32"},
		{"LiT step trimmed vs untrimmed at ctx 77 ablation (samples/s)", "BenchmarkLiT/ctx77", "BenchmarkLiT/ctx77-notrim"},
	} {
		cm := Comparison{Name: ab.name, Ours: metric(bench, ab.ours, "samples/s"), OursWhat: ab.ours + " samples/s",
			Ref: metric(bench, ab.ref, "samples/s"), RefWhat: ab.ref + " samples/s"}
		cm.Ratio = ratio(cm.Ours, cm.Ref)
		out = append(out, cm)
	}
	return out
}
