package emu_test

import (
	"testing"

	"github.com/litcache/litcache/cuda"
	"github.com/litcache/litcache/cuda/littest"
)

// TestClipTinyEmulated runs littest.ClipTinyImage on the emulated GPU, the
// check cuda/towers runs on a real one.
func TestClipTinyEmulated(t *testing.T) { littest.ClipTinyImage(t, open) }

// TestTextGradientsEmulated runs littest.TextGradients on the emulated GPU.
func TestTextGradientsEmulated(t *testing.T) {
	littest.TextGradients(t, open(t, cuda.Options{Precision: cuda.F32}))
}
