package backend

import "fmt"

// Linear layer, PyTorch nn.Linear layout: x (N,I), w (O,I), bias (O), out (N,O).

// Linear: out = act(x · wᵀ + bias). bias may be nil.
func (c *CPU) Linear(out, x, w, bias Tensor, act Act) {
	n, in := rowsCols(x)
	o, wi := rowsCols(w)
	on, oo := rowsCols(out)
	if wi != in || on != n || oo != o {
		panic(fmt.Sprintf("backend: cpu: Linear: x %v, w %v, out %v do not agree", x.Shape(), w.Shape(), out.Shape()))
	}
	od := data(out)
	var bd []float32
	if bias != nil {
		bd = data(bias)
		mustLen("Linear", "bias", len(bd), o)
	}
	if bd == nil && act == ActNone {
		c.sgemm(false, true, n, o, in, 1, data(x), in, data(w), in, 0, od, o)
		return
	}
	epilogue := func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := od[r*o : r*o+o]
			if bd != nil {
				for j, b := range bd[:len(row)] {
					row[j] += b
				}
			}
			applyAct(row, row, act)
		}
	}
	c.sgemmEpilogue(false, true, n, o, in, 1, data(x), in, data(w), in, 0, od, o, epilogue)
}

// LinearBackward (for ActNone): dx (N,I) += dout·w; dw (O,I) += doutᵀ·x;
// dbias (O) += Σ rows of dout. nil gradients are skipped.
func (c *CPU) LinearBackward(dx, dw, dbias, dout, x, w Tensor) {
	n, o := rowsCols(dout)
	wo, in := rowsCols(w)
	if wo != o {
		panic(fmt.Sprintf("backend: cpu: LinearBackward: dout %v and w %v do not agree", dout.Shape(), w.Shape()))
	}
	dd := data(dout)
	if dx != nil {
		mustLen("LinearBackward", "dx", dx.Len(), n*in)
		c.sgemm(false, false, n, in, o, 1, dd, o, data(w), in, 1, data(dx), in)
	}
	if dw != nil {
		mustLen("LinearBackward", "dw", dw.Len(), o*in)
		mustLen("LinearBackward", "x", x.Len(), n*in)
		c.sgemm(true, false, o, in, n, 1, dd, o, data(x), in, 1, data(dw), in)
	}
	if dbias != nil {
		db := data(dbias)
		mustLen("LinearBackward", "dbias", len(db), o)
		// Split over columns so each goroutine owns its slice of dbias.
		c.parallel(o, n, func(lo, hi int) {
			acc := db[lo:hi]
			for r := 0; r < n; r++ {
				row := dd[r*o+lo : r*o+hi]
				for j, v := range row {
					acc[j] += v
				}
			}
		})
	}
}
