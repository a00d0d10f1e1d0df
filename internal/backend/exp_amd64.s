//go:build amd64 && !purego

#include "textflag.h"

// Polynomial coefficients of e^r on |r| ≤ ln2/2 (Cephes expf), each
// replicated over the 8 lanes of a YMM register.
DATA expPoly<>+0(SB)/4, $0x39506967
DATA expPoly<>+4(SB)/4, $0x39506967
DATA expPoly<>+8(SB)/4, $0x39506967
DATA expPoly<>+12(SB)/4, $0x39506967
DATA expPoly<>+16(SB)/4, $0x39506967
DATA expPoly<>+20(SB)/4, $0x39506967
DATA expPoly<>+24(SB)/4, $0x39506967
DATA expPoly<>+28(SB)/4, $0x39506967
DATA expPoly<>+32(SB)/4, $0x3ab743ce
DATA expPoly<>+36(SB)/4, $0x3ab743ce
DATA expPoly<>+40(SB)/4, $0x3ab743ce
DATA expPoly<>+44(SB)/4, $0x3ab743ce
DATA expPoly<>+48(SB)/4, $0x3ab743ce
DATA expPoly<>+52(SB)/4, $0x3ab743ce
DATA expPoly<>+56(SB)/4, $0x3ab743ce
DATA expPoly<>+60(SB)/4, $0x3ab743ce
DATA expPoly<>+64(SB)/4, $0x3c088908
DATA expPoly<>+68(SB)/4, $0x3c088908
DATA expPoly<>+72(SB)/4, $0x3c088908
DATA expPoly<>+76(SB)/4, $0x3c088908
DATA expPoly<>+80(SB)/4, $0x3c088908
DATA expPoly<>+84(SB)/4, $0x3c088908
DATA expPoly<>+88(SB)/4, $0x3c088908
DATA expPoly<>+92(SB)/4, $0x3c088908
DATA expPoly<>+96(SB)/4, $0x3d2aa9c1
DATA expPoly<>+100(SB)/4, $0x3d2aa9c1
DATA expPoly<>+104(SB)/4, $0x3d2aa9c1
DATA expPoly<>+108(SB)/4, $0x3d2aa9c1
DATA expPoly<>+112(SB)/4, $0x3d2aa9c1
DATA expPoly<>+116(SB)/4, $0x3d2aa9c1
DATA expPoly<>+120(SB)/4, $0x3d2aa9c1
DATA expPoly<>+124(SB)/4, $0x3d2aa9c1
DATA expPoly<>+128(SB)/4, $0x3e2aaaaa
DATA expPoly<>+132(SB)/4, $0x3e2aaaaa
DATA expPoly<>+136(SB)/4, $0x3e2aaaaa
DATA expPoly<>+140(SB)/4, $0x3e2aaaaa
DATA expPoly<>+144(SB)/4, $0x3e2aaaaa
DATA expPoly<>+148(SB)/4, $0x3e2aaaaa
DATA expPoly<>+152(SB)/4, $0x3e2aaaaa
DATA expPoly<>+156(SB)/4, $0x3e2aaaaa
DATA expPoly<>+160(SB)/4, $0x3f000000
DATA expPoly<>+164(SB)/4, $0x3f000000
DATA expPoly<>+168(SB)/4, $0x3f000000
DATA expPoly<>+172(SB)/4, $0x3f000000
DATA expPoly<>+176(SB)/4, $0x3f000000
DATA expPoly<>+180(SB)/4, $0x3f000000
DATA expPoly<>+184(SB)/4, $0x3f000000
DATA expPoly<>+188(SB)/4, $0x3f000000
GLOBL expPoly<>(SB), RODATA|NOPTR, $192

// func expAffineAVX2(dst, src *float32, n int, a, c float32)
//
// dst[i] = e^(a·src[i] + c) for i < n, n a multiple of 8, with the argument
// clamped to [expClampLo, expClampHi]. Y15 a, Y14 c, Y13 hi, Y12 lo, Y11 log2e,
// Y10 ln2 head, Y9 ln2 tail (negated), Y8 1.0, Y7 int32 127.
TEXT ·expAffineAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS a+24(FP), Y15
	VBROADCASTSS c+28(FP), Y14
	MOVL $0x42b00f34, AX
	MOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $0xc2aeac4f, AX
	MOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $0x3fb8aa3b, AX
	MOVD AX, X11
	VPBROADCASTD X11, Y11
	MOVL $0x3f318000, AX
	MOVD AX, X10
	VPBROADCASTD X10, Y10
	MOVL $0xb95e8083, AX
	MOVD AX, X9
	VPBROADCASTD X9, Y9
	MOVL $0x3f800000, AX
	MOVD AX, X8
	VPBROADCASTD X8, Y8
	MOVL $0x0000007f, AX
	MOVD AX, X7
	VPBROADCASTD X7, Y7
	SHRQ $3, CX
	JEQ done
loop:
	VMOVUPS (SI), Y0
	VFMADD213PS Y14, Y15, Y0
	VMINPS Y13, Y0, Y0
	VMAXPS Y12, Y0, Y0
	VMULPS Y11, Y0, Y1
	VROUNDPS $0, Y1, Y1
	VMOVAPS Y0, Y2
	VFNMADD231PS Y10, Y1, Y2
	VFNMADD231PS Y9, Y1, Y2
	VMOVUPS expPoly<>+0(SB), Y3
	VFMADD213PS expPoly<>+32(SB), Y2, Y3
	VFMADD213PS expPoly<>+64(SB), Y2, Y3
	VFMADD213PS expPoly<>+96(SB), Y2, Y3
	VFMADD213PS expPoly<>+128(SB), Y2, Y3
	VFMADD213PS expPoly<>+160(SB), Y2, Y3
	VMULPS Y2, Y2, Y4
	VFMADD213PS Y2, Y4, Y3
	VADDPS Y8, Y3, Y3
	VCVTPS2DQ Y1, Y5
	VPADDD Y7, Y5, Y5
	VPSLLD $23, Y5, Y5
	VMULPS Y5, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ loop
done:
	VZEROUPPER
	RET
