package backend

import (
	"math/bits"
	"sync"
)

// The pure-Go GEMM, blocked and packed as in BLIS/GotoBLAS:
//
//	for jc over N in NC columns:            B panel (KC×NC) packed once, shared
//	  for pc over K in KC:
//	    pack op(b)[pc:pc+KC, jc:jc+NC] into NR-wide slivers
//	    for ic over M in MC rows (goroutines): A block (MC×KC) packed per worker
//	      pack alpha·op(a)[ic:ic+MC, pc:pc+KC] into MR-tall slivers
//	      for each MR×NR tile: micro-kernel C tile += Ap sliver · Bp sliver
//
// Packing makes the micro-kernel read both operands contiguously whatever the
// transposes, keeps the A block in L2 and a B sliver in L1, and folds alpha in.
// The micro-kernel is kernel.fn: assembly (AVX-512, else AVX2+FMA) where the
// CPU has it, else the register-blocked Go kernel below.

// Block sizes: an A block MC×KC = 144×384 floats (216 KiB) sits in L2, a B
// sliver KC×NR (24 KiB at NR=16, 48 KiB at NR=32) streams from L1/L2; NC
// bounds the shared B panel (6 MiB). KC was measured on the Zen 5 this was
// written on (1576×3072×768, one thread, GFLOP per CPU-second): AVX-512
// kernel 111/142/138/130 at KC 256/384/512/768, AVX2 kernel 76/79/74 at
// 256/384/512; a deeper K block reloads the C tile less often.
const (
	gemmKC = 384
	gemmMC = 144
	gemmNC = 4096
)

// gemmKernel is a micro-kernel: c[i*ldc+j] (+)= Σ_p a[p*mr+i]·b[p*nr+j] for
// an mr×nr tile, with a and b packed slivers of depth k ≥ 1; it adds to c when
// acc is set and overwrites it otherwise (the first K block when beta = 0,
// which saves clearing C beforehand).
type gemmKernel struct {
	name   string
	mr, nr int
	// beatsBLAS marks a kernel measured faster than OpenBLAS, which NewCPU
	// then does not load.
	beatsBLAS bool
	fn        func(k int, a, b, c []float32, ldc int, acc bool)
}

// goKernel2x4 is the portable micro-kernel: a 2×4 tile in 8 scalar
// accumulators, with the packed slivers re-sliced to constant lengths so the
// compiler drops the bounds checks in the inner loop. A 4×4 tile measured
// half as fast: its 16 accumulators plus operands exceed the 15 usable X
// registers and the compiler spills them to the stack in the inner loop.
var goKernel2x4 = gemmKernel{name: "go 2x4", mr: 2, nr: 4, fn: kernel2x4}

func kernel2x4(k int, a, b, c []float32, ldc int, acc bool) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	a = a[:2*k]
	b = b[:4*k]
	for len(a) >= 2 && len(b) >= 4 {
		a0, a1 := a[0], a[1]
		b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a, b = a[2:], b[4:]
	}
	r0, r1 := c[:4], c[ldc:ldc+4]
	if !acc {
		r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
		r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
		return
	}
	r0[0] += c00
	r0[1] += c01
	r0[2] += c02
	r0[3] += c03
	r1[0] += c10
	r1[1] += c11
	r1[2] += c12
	r1[3] += c13
}

// gemmBuffers holds the packing buffers GEMM calls borrow, by power-of-two
// size class. A sync.Pool here handed a small buffer (attention's per-head
// products) to a request for a large one (a Linear's 6 MB B panel), which
// then allocated: about 25 MB of garbage per LiT step of a 12×512 tower,
// enough to keep the heap growing between collections (issue 15). Classes
// keep every buffer reusable; their number is bounded by the goroutines
// packing at once.
type gemmBuffers struct {
	mu   sync.Mutex
	free [48][]*[]float32
}

func (g *gemmBuffers) get(n int) *[]float32 {
	c := bits.Len(uint(max(n, 1) - 1)) // smallest class with 1<<c ≥ n
	g.mu.Lock()
	if l := g.free[c]; len(l) > 0 {
		p := l[len(l)-1]
		g.free[c] = l[:len(l)-1]
		g.mu.Unlock()
		*p = (*p)[:n]
		return p
	}
	g.mu.Unlock()
	s := make([]float32, n, 1<<c)
	return &s
}

func (g *gemmBuffers) put(p *[]float32) {
	c := bits.Len(uint(cap(*p)) - 1)
	g.mu.Lock()
	g.free[c] = append(g.free[c], p)
	g.mu.Unlock()
}

// gemmSerial is goGemm on one goroutine (c.threads = 1), with the same
// blocking, so the same results, but without goroutines or closures: the
// attention ops call it per (batch, head), tens of thousands of times a step,
// and goGemmEpilogue's closures and its escaping *CPU cost a heap allocation
// each time.
func gemmSerial(kern gemmKernel, bufs *gemmBuffers, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int) {
	if alpha == 0 || k == 0 || beta != 0 && beta != 1 {
		scaleC(&CPU{threads: 1}, m, n, beta, cm, ldc)
		if alpha == 0 || k == 0 {
			return
		}
	}
	overwrite := beta == 0
	mr, nr := kern.mr, kern.nr
	perThread := (m + gemmMC - 1) / gemmMC
	mc := max(roundUp((m+perThread-1)/perThread, mr), mr)
	nc := min(gemmNC, roundUp(n, nr))
	kc := min(gemmKC, k)
	bufB := bufs.get(kc * nc)
	bufA := bufs.get(mc*kc + mr*nr)
	bp := *bufB
	for jc := 0; jc < n; jc += nc {
		ncur := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kcur := min(kc, k-pc)
			acc := pc > 0 || !overwrite
			packB(bp, b, ldb, transB, pc, kcur, jc, ncur, nr, 0, (ncur+nr-1)/nr)
			ap, tile := (*bufA)[:mc*kcur], (*bufA)[mc*kcur:]
			for ic := 0; ic < m; ic += mc {
				mcur := min(mc, m-ic)
				packA(ap, a, lda, transA, alpha, ic, mcur, pc, kcur, mr)
				macroKernel(kern, ap, bp, cm[ic*ldc+jc:], ldc, mcur, ncur, kcur, tile, acc)
			}
		}
	}
	bufs.put(bufA)
	bufs.put(bufB)
}

// goGemm is the pure-Go sgemm (row-major, leading dimensions as BLAS).
func goGemm(c *CPU, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int) {
	goGemmEpilogue(c, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, cm, ldc, nil)
}

// goGemmEpilogue is goGemm followed by epi(lo, hi) over every row range of
// C, called as soon as those rows are final, while they are still in cache
// (Linear's bias and activation). epi may be nil.
func goGemmEpilogue(c *CPU, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cm []float32, ldc int, epi func(lo, hi int)) {
	if alpha == 0 || k == 0 {
		scaleC(c, m, n, beta, cm, ldc)
		if epi != nil {
			c.parallel(m, n, epi)
		}
		return
	}
	// With beta = 0 the first K block overwrites C, else C is scaled first
	// and every block adds.
	overwrite := beta == 0
	if !overwrite {
		scaleC(c, m, n, beta, cm, ldc)
	}
	kern := c.kernel
	mr, nr := kern.mr, kern.nr
	// Row blocks of at most MC rows, their count a multiple of the thread
	// count so that every goroutine gets the same share.
	perThread := (m + c.threads*gemmMC - 1) / (c.threads * gemmMC)
	mc := max(roundUp((m+c.threads*perThread-1)/(c.threads*perThread), mr), mr)
	nc := min(gemmNC, roundUp(n, nr))
	kc := min(gemmKC, k)
	bufB := c.bufs.get(kc * nc)
	defer c.bufs.put(bufB)
	bp := *bufB
	for jc := 0; jc < n; jc += nc {
		ncur := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kcur := min(kc, k-pc)
			acc := pc > 0 || !overwrite
			// Rows are final after the last K block of the last column panel.
			final := pc+kcur == k && jc+ncur == n
			slivers := (ncur + nr - 1) / nr
			c.parallel(slivers, kcur*nr*4, func(lo, hi int) {
				packB(bp, b, ldb, transB, pc, kcur, jc, ncur, nr, lo, hi)
			})
			blocks := (m + mc - 1) / mc
			if blocks < c.threads && slivers > 1 {
				// Too few rows to share: split the columns instead, each
				// goroutine packing the (small) A block itself.
				c.parallel(slivers, 2*m*kcur*nr, func(lo, hi int) {
					bufA := c.bufs.get(mc*kcur + mr*nr)
					defer c.bufs.put(bufA)
					ap, tile := (*bufA)[:mc*kcur], (*bufA)[mc*kcur:]
					j0, j1 := lo*nr, min(hi*nr, ncur)
					for ic := 0; ic < m; ic += mc {
						mcur := min(mc, m-ic)
						packA(ap, a, lda, transA, alpha, ic, mcur, pc, kcur, mr)
						macroKernel(kern, ap, bp[lo*kcur*nr:], cm[ic*ldc+jc+j0:], ldc, mcur, j1-j0, kcur, tile, acc)
					}
				})
				if final && epi != nil {
					c.parallel(m, n*8, epi)
				}
				continue
			}
			c.parallel(blocks, 2*mc*kcur*ncur, func(lo, hi int) {
				bufA := c.bufs.get(mc*kcur + mr*nr)
				defer c.bufs.put(bufA)
				ap, tile := (*bufA)[:mc*kcur], (*bufA)[mc*kcur:]
				for blk := lo; blk < hi; blk++ {
					ic := blk * mc
					mcur := min(mc, m-ic)
					packA(ap, a, lda, transA, alpha, ic, mcur, pc, kcur, mr)
					macroKernel(kern, ap, bp, cm[ic*ldc+jc:], ldc, mcur, ncur, kcur, tile, acc)
					if final && epi != nil {
						epi(ic, ic+mcur)
					}
				}
			})
		}
	}
}

// macroKernel runs the micro-kernel over the mcur×ncur block at c; partial
// tiles at the edges go through tile (mr×nr scratch).
func macroKernel(kern gemmKernel, ap, bp, c []float32, ldc, mcur, ncur, kc int, tile []float32, acc bool) {
	mr, nr := kern.mr, kern.nr
	for jr := 0; jr < ncur; jr += nr {
		bs := bp[(jr/nr)*kc*nr:][:kc*nr]
		nw := min(nr, ncur-jr)
		for ir := 0; ir < mcur; ir += mr {
			as := ap[(ir/mr)*kc*mr:][:kc*mr]
			mh := min(mr, mcur-ir)
			if mh == mr && nw == nr {
				kern.fn(kc, as, bs, c[ir*ldc+jr:], ldc, acc)
				continue
			}
			kern.fn(kc, as, bs, tile, nr, false)
			for i := 0; i < mh; i++ {
				dst := c[(ir+i)*ldc+jr:][:nw]
				src := tile[i*nr : i*nr+nw]
				if acc {
					for j, v := range src {
						dst[j] += v
					}
				} else {
					copy(dst, src)
				}
			}
		}
	}
}

// packA copies alpha·op(a)[ic:ic+mcur, pc:pc+kc] into mr-tall slivers:
// ap[(s·kc + p)·mr + i] = alpha·op(a)[ic+s·mr+i, pc+p], rows past mcur zero.
func packA(ap, a []float32, lda int, transA bool, alpha float32, ic, mcur, pc, kc, mr int) {
	for s := 0; s*mr < mcur; s++ {
		dst := ap[s*kc*mr:][:kc*mr]
		rows := min(mr, mcur-s*mr)
		r0 := ic + s*mr
		if rows < mr {
			clear(dst)
		}
		if transA {
			// op(a)[r, p] = a[p, r]: the mr rows of a sliver are contiguous in a.
			for p := 0; p < kc; p++ {
				src := a[(pc+p)*lda+r0:][:rows]
				d := dst[p*mr:][:rows]
				for i, v := range src {
					d[i] = alpha * v
				}
			}
			continue
		}
		// Four rows at a time: each p then writes 4 adjacent floats instead
		// of 1 (1.5× the packing speed of the row-by-row loop).
		i := 0
		for ; i+4 <= rows; i += 4 {
			s0 := a[(r0+i)*lda+pc:][:kc]
			s1 := a[(r0+i+1)*lda+pc:][:kc]
			s2 := a[(r0+i+2)*lda+pc:][:kc]
			s3 := a[(r0+i+3)*lda+pc:][:kc]
			for p := range s0 {
				d := dst[p*mr+i:][:4]
				d[0], d[1], d[2], d[3] = alpha*s0[p], alpha*s1[p], alpha*s2[p], alpha*s3[p]
			}
		}
		for ; i < rows; i++ {
			src := a[(r0+i)*lda+pc:][:kc]
			for p, v := range src {
				dst[p*mr+i] = alpha * v
			}
		}
	}
}

// packB copies op(b)[pc:pc+kc, jc:jc+ncur] slivers lo..hi into nr-wide
// slivers: bp[(s·kc + p)·nr + j] = op(b)[pc+p, jc+s·nr+j], columns past ncur zero.
func packB(bp, b []float32, ldb int, transB bool, pc, kc, jc, ncur, nr, lo, hi int) {
	for s := lo; s < hi; s++ {
		dst := bp[s*kc*nr:][:kc*nr]
		cols := min(nr, ncur-s*nr)
		c0 := jc + s*nr
		if cols < nr {
			clear(dst)
		}
		if transB {
			// op(b)[p, j] = b[j, p]: each column of the sliver is a row of b;
			// four at a time, as in packA.
			j := 0
			for ; j+4 <= cols; j += 4 {
				s0 := b[(c0+j)*ldb+pc:][:kc]
				s1 := b[(c0+j+1)*ldb+pc:][:kc]
				s2 := b[(c0+j+2)*ldb+pc:][:kc]
				s3 := b[(c0+j+3)*ldb+pc:][:kc]
				for p := range s0 {
					d := dst[p*nr+j:][:4]
					d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
				}
			}
			for ; j < cols; j++ {
				src := b[(c0+j)*ldb+pc:][:kc]
				for p, v := range src {
					dst[p*nr+j] = v
				}
			}
			continue
		}
		for p := 0; p < kc; p++ {
			copy(dst[p*nr:p*nr+cols], b[(pc+p)*ldb+c0:][:cols])
		}
	}
}

// scaleC applies c = beta·c (beta 0 clears, so NaNs in c do not survive).
func scaleC(c *CPU, m, n int, beta float32, cm []float32, ldc int) {
	if beta == 1 {
		return
	}
	c.parallel(m, n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := cm[i*ldc : i*ldc+n]
			if beta == 0 {
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
	})
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }
