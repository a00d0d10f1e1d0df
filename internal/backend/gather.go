package backend

import "fmt"

// Row gathers and layout ops: token embeddings, pooling rows, the class token,
// and im2col for the patch embedding. V vocab, S image side, P patch side.

// Embedding: out (N,C) = table[ids[n]] with table (V,C).
func (c *CPU) Embedding(out, table Tensor, ids []int32) {
	v, ch := rowsCols(table)
	checkShape2("Embedding", "out", out, len(ids), ch)
	od, td := data(out), data(table)
	for n, id := range ids {
		if id < 0 || int(id) >= v {
			panic(fmt.Sprintf("backend: cpu: Embedding: id %d at position %d outside the table's %d rows", id, n, v))
		}
		copy(od[n*ch:n*ch+ch], td[int(id)*ch:int(id)*ch+ch])
	}
}

// EmbeddingBackward: dtable[ids[n]] += dout[n].
func (c *CPU) EmbeddingBackward(dtable, dout Tensor, ids []int32) {
	v, ch := rowsCols(dtable)
	checkShape2("EmbeddingBackward", "dout", dout, len(ids), ch)
	td, dd := data(dtable), data(dout)
	for n, id := range ids {
		if id < 0 || int(id) >= v {
			panic(fmt.Sprintf("backend: cpu: EmbeddingBackward: id %d at position %d outside the table's %d rows", id, n, v))
		}
		acc := td[int(id)*ch : int(id)*ch+ch]
		for i, x := range dd[n*ch : n*ch+ch] {
			acc[i] += x
		}
	}
}

// GatherRows: out (len(rows), C) = x[rows[i]] with x (N,C).
func (c *CPU) GatherRows(out, x Tensor, rows []int) {
	n, ch := rowsCols(x)
	checkShape2("GatherRows", "out", out, len(rows), ch)
	od, xd := data(out), data(x)
	for i, r := range rows {
		if r < 0 || r >= n {
			panic(fmt.Sprintf("backend: cpu: GatherRows: row %d at position %d outside x's %d rows", r, i, n))
		}
		copy(od[i*ch:i*ch+ch], xd[r*ch:r*ch+ch])
	}
}

// GatherRowsBackward: dx[rows[i]] += dout[i].
func (c *CPU) GatherRowsBackward(dx, dout Tensor, rows []int) {
	n, ch := rowsCols(dx)
	checkShape2("GatherRowsBackward", "dout", dout, len(rows), ch)
	xd, dd := data(dx), data(dout)
	for i, r := range rows {
		if r < 0 || r >= n {
			panic(fmt.Sprintf("backend: cpu: GatherRowsBackward: row %d at position %d outside dx's %d rows", r, i, n))
		}
		acc := xd[r*ch : r*ch+ch]
		for j, v := range dd[i*ch : i*ch+ch] {
			acc[j] += v
		}
	}
}

// PrependRow: out (B,T+1,C) with out[b,0] = tok (C) and out[b,1:] = x (B,T,C).
func (c *CPU) PrependRow(out, x, tok Tensor, B, T int) {
	td := data(tok)
	ch := len(td)
	od, xd := data(out), data(x)
	mustLen("PrependRow", "x", len(xd), B*T*ch)
	mustLen("PrependRow", "out", len(od), B*(T+1)*ch)
	for b := 0; b < B; b++ {
		dst := od[b*(T+1)*ch:]
		copy(dst[:ch], td)
		copy(dst[ch:(T+1)*ch], xd[b*T*ch:(b+1)*T*ch])
	}
}

// Patchify: pixels (B,3,S,S) → out (B·G², 3·P·P), G = S/P, each row ordered
// (channel, dy, dx) as a Conv2d weight (O,3,P,P) flattens, patches in
// row-major grid order.
func (c *CPU) Patchify(out, pixels Tensor, B, S, P int) {
	if P <= 0 || S%P != 0 {
		panic(fmt.Sprintf("backend: cpu: Patchify: image side %d is not a multiple of patch %d", S, P))
	}
	G := S / P
	pd, od := data(pixels), data(out)
	mustLen("Patchify", "pixels", len(pd), B*3*S*S)
	checkShape2("Patchify", "out", out, B*G*G, 3*P*P)
	c.parallel(B*G, G*3*P*P, func(lo, hi int) {
		for bg := lo; bg < hi; bg++ {
			b, gy := bg/G, bg%G
			for gx := 0; gx < G; gx++ {
				row := od[((b*G+gy)*G+gx)*3*P*P:][:3*P*P]
				for ch := 0; ch < 3; ch++ {
					for dy := 0; dy < P; dy++ {
						src := pd[((b*3+ch)*S+gy*P+dy)*S+gx*P:][:P]
						copy(row[(ch*P+dy)*P:][:P], src)
					}
				}
			}
		}
	})
}
