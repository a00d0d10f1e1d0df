//go:build amd64 && !purego

#include "textflag.h"

// Constants of the GELU kernels, each replicated over 8 lanes: Numerical
// Recipes' erfc (erfc(u) = t·e^(−u² − 1.26551223 + t·K(t)), t = 1/(1+u/2),
// relative error < 1.2e-7 for u ≥ 0) and the exp of exp_amd64.s.
DATA geluConst<>+0(SB)/4, $0x7fffffff
DATA geluConst<>+4(SB)/4, $0x7fffffff
DATA geluConst<>+8(SB)/4, $0x7fffffff
DATA geluConst<>+12(SB)/4, $0x7fffffff
DATA geluConst<>+16(SB)/4, $0x7fffffff
DATA geluConst<>+20(SB)/4, $0x7fffffff
DATA geluConst<>+24(SB)/4, $0x7fffffff
DATA geluConst<>+28(SB)/4, $0x7fffffff
DATA geluConst<>+32(SB)/4, $0x3f3504f3
DATA geluConst<>+36(SB)/4, $0x3f3504f3
DATA geluConst<>+40(SB)/4, $0x3f3504f3
DATA geluConst<>+44(SB)/4, $0x3f3504f3
DATA geluConst<>+48(SB)/4, $0x3f3504f3
DATA geluConst<>+52(SB)/4, $0x3f3504f3
DATA geluConst<>+56(SB)/4, $0x3f3504f3
DATA geluConst<>+60(SB)/4, $0x3f3504f3
DATA geluConst<>+64(SB)/4, $0x3f000000
DATA geluConst<>+68(SB)/4, $0x3f000000
DATA geluConst<>+72(SB)/4, $0x3f000000
DATA geluConst<>+76(SB)/4, $0x3f000000
DATA geluConst<>+80(SB)/4, $0x3f000000
DATA geluConst<>+84(SB)/4, $0x3f000000
DATA geluConst<>+88(SB)/4, $0x3f000000
DATA geluConst<>+92(SB)/4, $0x3f000000
DATA geluConst<>+96(SB)/4, $0x3f800000
DATA geluConst<>+100(SB)/4, $0x3f800000
DATA geluConst<>+104(SB)/4, $0x3f800000
DATA geluConst<>+108(SB)/4, $0x3f800000
DATA geluConst<>+112(SB)/4, $0x3f800000
DATA geluConst<>+116(SB)/4, $0x3f800000
DATA geluConst<>+120(SB)/4, $0x3f800000
DATA geluConst<>+124(SB)/4, $0x3f800000
DATA geluConst<>+128(SB)/4, $0xbfa1fc4e
DATA geluConst<>+132(SB)/4, $0xbfa1fc4e
DATA geluConst<>+136(SB)/4, $0xbfa1fc4e
DATA geluConst<>+140(SB)/4, $0xbfa1fc4e
DATA geluConst<>+144(SB)/4, $0xbfa1fc4e
DATA geluConst<>+148(SB)/4, $0xbfa1fc4e
DATA geluConst<>+152(SB)/4, $0xbfa1fc4e
DATA geluConst<>+156(SB)/4, $0xbfa1fc4e
DATA geluConst<>+160(SB)/4, $0x3f8000c7
DATA geluConst<>+164(SB)/4, $0x3f8000c7
DATA geluConst<>+168(SB)/4, $0x3f8000c7
DATA geluConst<>+172(SB)/4, $0x3f8000c7
DATA geluConst<>+176(SB)/4, $0x3f8000c7
DATA geluConst<>+180(SB)/4, $0x3f8000c7
DATA geluConst<>+184(SB)/4, $0x3f8000c7
DATA geluConst<>+188(SB)/4, $0x3f8000c7
DATA geluConst<>+192(SB)/4, $0x3ebf88fb
DATA geluConst<>+196(SB)/4, $0x3ebf88fb
DATA geluConst<>+200(SB)/4, $0x3ebf88fb
DATA geluConst<>+204(SB)/4, $0x3ebf88fb
DATA geluConst<>+208(SB)/4, $0x3ebf88fb
DATA geluConst<>+212(SB)/4, $0x3ebf88fb
DATA geluConst<>+216(SB)/4, $0x3ebf88fb
DATA geluConst<>+220(SB)/4, $0x3ebf88fb
DATA geluConst<>+224(SB)/4, $0x3dc636c9
DATA geluConst<>+228(SB)/4, $0x3dc636c9
DATA geluConst<>+232(SB)/4, $0x3dc636c9
DATA geluConst<>+236(SB)/4, $0x3dc636c9
DATA geluConst<>+240(SB)/4, $0x3dc636c9
DATA geluConst<>+244(SB)/4, $0x3dc636c9
DATA geluConst<>+248(SB)/4, $0x3dc636c9
DATA geluConst<>+252(SB)/4, $0x3dc636c9
DATA geluConst<>+256(SB)/4, $0xbe3ec24c
DATA geluConst<>+260(SB)/4, $0xbe3ec24c
DATA geluConst<>+264(SB)/4, $0xbe3ec24c
DATA geluConst<>+268(SB)/4, $0xbe3ec24c
DATA geluConst<>+272(SB)/4, $0xbe3ec24c
DATA geluConst<>+276(SB)/4, $0xbe3ec24c
DATA geluConst<>+280(SB)/4, $0xbe3ec24c
DATA geluConst<>+284(SB)/4, $0xbe3ec24c
DATA geluConst<>+288(SB)/4, $0x3e8ec7cc
DATA geluConst<>+292(SB)/4, $0x3e8ec7cc
DATA geluConst<>+296(SB)/4, $0x3e8ec7cc
DATA geluConst<>+300(SB)/4, $0x3e8ec7cc
DATA geluConst<>+304(SB)/4, $0x3e8ec7cc
DATA geluConst<>+308(SB)/4, $0x3e8ec7cc
DATA geluConst<>+312(SB)/4, $0x3e8ec7cc
DATA geluConst<>+316(SB)/4, $0x3e8ec7cc
DATA geluConst<>+320(SB)/4, $0xbf914e5d
DATA geluConst<>+324(SB)/4, $0xbf914e5d
DATA geluConst<>+328(SB)/4, $0xbf914e5d
DATA geluConst<>+332(SB)/4, $0xbf914e5d
DATA geluConst<>+336(SB)/4, $0xbf914e5d
DATA geluConst<>+340(SB)/4, $0xbf914e5d
DATA geluConst<>+344(SB)/4, $0xbf914e5d
DATA geluConst<>+348(SB)/4, $0xbf914e5d
DATA geluConst<>+352(SB)/4, $0x3fbe87b0
DATA geluConst<>+356(SB)/4, $0x3fbe87b0
DATA geluConst<>+360(SB)/4, $0x3fbe87b0
DATA geluConst<>+364(SB)/4, $0x3fbe87b0
DATA geluConst<>+368(SB)/4, $0x3fbe87b0
DATA geluConst<>+372(SB)/4, $0x3fbe87b0
DATA geluConst<>+376(SB)/4, $0x3fbe87b0
DATA geluConst<>+380(SB)/4, $0x3fbe87b0
DATA geluConst<>+384(SB)/4, $0xbf527892
DATA geluConst<>+388(SB)/4, $0xbf527892
DATA geluConst<>+392(SB)/4, $0xbf527892
DATA geluConst<>+396(SB)/4, $0xbf527892
DATA geluConst<>+400(SB)/4, $0xbf527892
DATA geluConst<>+404(SB)/4, $0xbf527892
DATA geluConst<>+408(SB)/4, $0xbf527892
DATA geluConst<>+412(SB)/4, $0xbf527892
DATA geluConst<>+416(SB)/4, $0x3e2ef945
DATA geluConst<>+420(SB)/4, $0x3e2ef945
DATA geluConst<>+424(SB)/4, $0x3e2ef945
DATA geluConst<>+428(SB)/4, $0x3e2ef945
DATA geluConst<>+432(SB)/4, $0x3e2ef945
DATA geluConst<>+436(SB)/4, $0x3e2ef945
DATA geluConst<>+440(SB)/4, $0x3e2ef945
DATA geluConst<>+444(SB)/4, $0x3e2ef945
DATA geluConst<>+448(SB)/4, $0x3fb8aa3b
DATA geluConst<>+452(SB)/4, $0x3fb8aa3b
DATA geluConst<>+456(SB)/4, $0x3fb8aa3b
DATA geluConst<>+460(SB)/4, $0x3fb8aa3b
DATA geluConst<>+464(SB)/4, $0x3fb8aa3b
DATA geluConst<>+468(SB)/4, $0x3fb8aa3b
DATA geluConst<>+472(SB)/4, $0x3fb8aa3b
DATA geluConst<>+476(SB)/4, $0x3fb8aa3b
DATA geluConst<>+480(SB)/4, $0x3f318000
DATA geluConst<>+484(SB)/4, $0x3f318000
DATA geluConst<>+488(SB)/4, $0x3f318000
DATA geluConst<>+492(SB)/4, $0x3f318000
DATA geluConst<>+496(SB)/4, $0x3f318000
DATA geluConst<>+500(SB)/4, $0x3f318000
DATA geluConst<>+504(SB)/4, $0x3f318000
DATA geluConst<>+508(SB)/4, $0x3f318000
DATA geluConst<>+512(SB)/4, $0xb95e8083
DATA geluConst<>+516(SB)/4, $0xb95e8083
DATA geluConst<>+520(SB)/4, $0xb95e8083
DATA geluConst<>+524(SB)/4, $0xb95e8083
DATA geluConst<>+528(SB)/4, $0xb95e8083
DATA geluConst<>+532(SB)/4, $0xb95e8083
DATA geluConst<>+536(SB)/4, $0xb95e8083
DATA geluConst<>+540(SB)/4, $0xb95e8083
DATA geluConst<>+544(SB)/4, $0x39506967
DATA geluConst<>+548(SB)/4, $0x39506967
DATA geluConst<>+552(SB)/4, $0x39506967
DATA geluConst<>+556(SB)/4, $0x39506967
DATA geluConst<>+560(SB)/4, $0x39506967
DATA geluConst<>+564(SB)/4, $0x39506967
DATA geluConst<>+568(SB)/4, $0x39506967
DATA geluConst<>+572(SB)/4, $0x39506967
DATA geluConst<>+576(SB)/4, $0x3ab743ce
DATA geluConst<>+580(SB)/4, $0x3ab743ce
DATA geluConst<>+584(SB)/4, $0x3ab743ce
DATA geluConst<>+588(SB)/4, $0x3ab743ce
DATA geluConst<>+592(SB)/4, $0x3ab743ce
DATA geluConst<>+596(SB)/4, $0x3ab743ce
DATA geluConst<>+600(SB)/4, $0x3ab743ce
DATA geluConst<>+604(SB)/4, $0x3ab743ce
DATA geluConst<>+608(SB)/4, $0x3c088908
DATA geluConst<>+612(SB)/4, $0x3c088908
DATA geluConst<>+616(SB)/4, $0x3c088908
DATA geluConst<>+620(SB)/4, $0x3c088908
DATA geluConst<>+624(SB)/4, $0x3c088908
DATA geluConst<>+628(SB)/4, $0x3c088908
DATA geluConst<>+632(SB)/4, $0x3c088908
DATA geluConst<>+636(SB)/4, $0x3c088908
DATA geluConst<>+640(SB)/4, $0x3d2aa9c1
DATA geluConst<>+644(SB)/4, $0x3d2aa9c1
DATA geluConst<>+648(SB)/4, $0x3d2aa9c1
DATA geluConst<>+652(SB)/4, $0x3d2aa9c1
DATA geluConst<>+656(SB)/4, $0x3d2aa9c1
DATA geluConst<>+660(SB)/4, $0x3d2aa9c1
DATA geluConst<>+664(SB)/4, $0x3d2aa9c1
DATA geluConst<>+668(SB)/4, $0x3d2aa9c1
DATA geluConst<>+672(SB)/4, $0x3e2aaaaa
DATA geluConst<>+676(SB)/4, $0x3e2aaaaa
DATA geluConst<>+680(SB)/4, $0x3e2aaaaa
DATA geluConst<>+684(SB)/4, $0x3e2aaaaa
DATA geluConst<>+688(SB)/4, $0x3e2aaaaa
DATA geluConst<>+692(SB)/4, $0x3e2aaaaa
DATA geluConst<>+696(SB)/4, $0x3e2aaaaa
DATA geluConst<>+700(SB)/4, $0x3e2aaaaa
DATA geluConst<>+704(SB)/4, $0x3f000000
DATA geluConst<>+708(SB)/4, $0x3f000000
DATA geluConst<>+712(SB)/4, $0x3f000000
DATA geluConst<>+716(SB)/4, $0x3f000000
DATA geluConst<>+720(SB)/4, $0x3f000000
DATA geluConst<>+724(SB)/4, $0x3f000000
DATA geluConst<>+728(SB)/4, $0x3f000000
DATA geluConst<>+732(SB)/4, $0x3f000000
DATA geluConst<>+736(SB)/4, $0x0000007f
DATA geluConst<>+740(SB)/4, $0x0000007f
DATA geluConst<>+744(SB)/4, $0x0000007f
DATA geluConst<>+748(SB)/4, $0x0000007f
DATA geluConst<>+752(SB)/4, $0x0000007f
DATA geluConst<>+756(SB)/4, $0x0000007f
DATA geluConst<>+760(SB)/4, $0x0000007f
DATA geluConst<>+764(SB)/4, $0x0000007f
DATA geluConst<>+768(SB)/4, $0x3ecc422a
DATA geluConst<>+772(SB)/4, $0x3ecc422a
DATA geluConst<>+776(SB)/4, $0x3ecc422a
DATA geluConst<>+780(SB)/4, $0x3ecc422a
DATA geluConst<>+784(SB)/4, $0x3ecc422a
DATA geluConst<>+788(SB)/4, $0x3ecc422a
DATA geluConst<>+792(SB)/4, $0x3ecc422a
DATA geluConst<>+796(SB)/4, $0x3ecc422a
DATA geluConst<>+800(SB)/4, $0xc2a8999a
DATA geluConst<>+804(SB)/4, $0xc2a8999a
DATA geluConst<>+808(SB)/4, $0xc2a8999a
DATA geluConst<>+812(SB)/4, $0xc2a8999a
DATA geluConst<>+816(SB)/4, $0xc2a8999a
DATA geluConst<>+820(SB)/4, $0xc2a8999a
DATA geluConst<>+824(SB)/4, $0xc2a8999a
DATA geluConst<>+828(SB)/4, $0xc2a8999a
GLOBL geluConst<>(SB), RODATA|NOPTR, $832

// func geluAVX2(dst, src *float32, n int)
//
// dst[i] = src[i]·Φ(src[i]) for i < n, n a multiple of 8.
TEXT ·geluAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ gdone
gloop:
	VMOVUPS (SI), Y8
	VANDPS geluConst<>+0(SB), Y8, Y9
	VMULPS geluConst<>+32(SB), Y9, Y9
	VMULPS geluConst<>+64(SB), Y9, Y10
	VADDPS geluConst<>+96(SB), Y10, Y10
	VMOVUPS geluConst<>+96(SB), Y11
	VDIVPS Y10, Y11, Y10
	VMOVUPS geluConst<>+416(SB), Y11
	VFMADD213PS geluConst<>+384(SB), Y10, Y11
	VFMADD213PS geluConst<>+352(SB), Y10, Y11
	VFMADD213PS geluConst<>+320(SB), Y10, Y11
	VFMADD213PS geluConst<>+288(SB), Y10, Y11
	VFMADD213PS geluConst<>+256(SB), Y10, Y11
	VFMADD213PS geluConst<>+224(SB), Y10, Y11
	VFMADD213PS geluConst<>+192(SB), Y10, Y11
	VFMADD213PS geluConst<>+160(SB), Y10, Y11
	VFMADD213PS geluConst<>+128(SB), Y10, Y11
	VMULPS Y8, Y8, Y12
	VMOVAPS Y12, Y13
	VFMSUB231PS Y8, Y8, Y13
	VMULPS geluConst<>+64(SB), Y12, Y12
	VMULPS geluConst<>+64(SB), Y13, Y13
	VXORPS Y0, Y0, Y0
	VSUBPS Y12, Y0, Y0
	VSUBPS Y13, Y11, Y4
	VMAXPS geluConst<>+800(SB), Y0, Y0
	VADDPS Y4, Y0, Y1
	VMULPS geluConst<>+448(SB), Y1, Y1
	VROUNDPS $0, Y1, Y1
	VFNMADD231PS geluConst<>+480(SB), Y1, Y0
	VADDPS Y4, Y0, Y0
	VFNMADD231PS geluConst<>+512(SB), Y1, Y0
	VMOVUPS geluConst<>+544(SB), Y2
	VFMADD213PS geluConst<>+576(SB), Y0, Y2
	VFMADD213PS geluConst<>+608(SB), Y0, Y2
	VFMADD213PS geluConst<>+640(SB), Y0, Y2
	VFMADD213PS geluConst<>+672(SB), Y0, Y2
	VFMADD213PS geluConst<>+704(SB), Y0, Y2
	VMULPS Y0, Y0, Y3
	VFMADD213PS Y0, Y3, Y2
	VADDPS geluConst<>+96(SB), Y2, Y2
	VCVTPS2DQ Y1, Y1
	VPADDD geluConst<>+736(SB), Y1, Y1
	VPSLLD $23, Y1, Y1
	VMULPS Y1, Y2, Y0
	VMULPS Y10, Y0, Y0
	VMULPS geluConst<>+64(SB), Y0, Y0
	VMOVUPS geluConst<>+96(SB), Y1
	VSUBPS Y0, Y1, Y1
	VBLENDVPS Y8, Y0, Y1, Y2
	VMULPS Y8, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ gloop
gdone:
	VZEROUPPER
	RET

// func geluGradAVX2(dx, dout, x *float32, n int)
//
// dx[i] += dout[i]·(Φ(x[i]) + x[i]·φ(x[i])) for i < n, n a multiple of 8.
TEXT ·geluGradAVX2(SB), NOSPLIT, $0-32
	MOVQ dx+0(FP), DI
	MOVQ dout+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JEQ ddone
dloop:
	VMOVUPS (SI), Y8
	VANDPS geluConst<>+0(SB), Y8, Y9
	VMULPS geluConst<>+32(SB), Y9, Y9
	VMULPS geluConst<>+64(SB), Y9, Y10
	VADDPS geluConst<>+96(SB), Y10, Y10
	VMOVUPS geluConst<>+96(SB), Y11
	VDIVPS Y10, Y11, Y10
	VMOVUPS geluConst<>+416(SB), Y11
	VFMADD213PS geluConst<>+384(SB), Y10, Y11
	VFMADD213PS geluConst<>+352(SB), Y10, Y11
	VFMADD213PS geluConst<>+320(SB), Y10, Y11
	VFMADD213PS geluConst<>+288(SB), Y10, Y11
	VFMADD213PS geluConst<>+256(SB), Y10, Y11
	VFMADD213PS geluConst<>+224(SB), Y10, Y11
	VFMADD213PS geluConst<>+192(SB), Y10, Y11
	VFMADD213PS geluConst<>+160(SB), Y10, Y11
	VFMADD213PS geluConst<>+128(SB), Y10, Y11
	VMULPS Y8, Y8, Y12
	VMOVAPS Y12, Y13
	VFMSUB231PS Y8, Y8, Y13
	VMULPS geluConst<>+64(SB), Y12, Y12
	VMULPS geluConst<>+64(SB), Y13, Y13
	VXORPS Y0, Y0, Y0
	VSUBPS Y12, Y0, Y0
	VSUBPS Y13, Y11, Y4
	VMAXPS geluConst<>+800(SB), Y0, Y0
	VADDPS Y4, Y0, Y1
	VMULPS geluConst<>+448(SB), Y1, Y1
	VROUNDPS $0, Y1, Y1
	VFNMADD231PS geluConst<>+480(SB), Y1, Y0
	VADDPS Y4, Y0, Y0
	VFNMADD231PS geluConst<>+512(SB), Y1, Y0
	VMOVUPS geluConst<>+544(SB), Y2
	VFMADD213PS geluConst<>+576(SB), Y0, Y2
	VFMADD213PS geluConst<>+608(SB), Y0, Y2
	VFMADD213PS geluConst<>+640(SB), Y0, Y2
	VFMADD213PS geluConst<>+672(SB), Y0, Y2
	VFMADD213PS geluConst<>+704(SB), Y0, Y2
	VMULPS Y0, Y0, Y3
	VFMADD213PS Y0, Y3, Y2
	VADDPS geluConst<>+96(SB), Y2, Y2
	VCVTPS2DQ Y1, Y1
	VPADDD geluConst<>+736(SB), Y1, Y1
	VPSLLD $23, Y1, Y1
	VMULPS Y1, Y2, Y0
	VMULPS Y10, Y0, Y0
	VMULPS geluConst<>+64(SB), Y0, Y0
	VMOVUPS geluConst<>+96(SB), Y1
	VSUBPS Y0, Y1, Y1
	VBLENDVPS Y8, Y0, Y1, Y2
	VMOVAPS Y2, Y14
	VXORPS Y0, Y0, Y0
	VSUBPS Y12, Y0, Y0
	VXORPS Y4, Y4, Y4
	VSUBPS Y13, Y4, Y4
	VMAXPS geluConst<>+800(SB), Y0, Y0
	VADDPS Y4, Y0, Y1
	VMULPS geluConst<>+448(SB), Y1, Y1
	VROUNDPS $0, Y1, Y1
	VFNMADD231PS geluConst<>+480(SB), Y1, Y0
	VADDPS Y4, Y0, Y0
	VFNMADD231PS geluConst<>+512(SB), Y1, Y0
	VMOVUPS geluConst<>+544(SB), Y2
	VFMADD213PS geluConst<>+576(SB), Y0, Y2
	VFMADD213PS geluConst<>+608(SB), Y0, Y2
	VFMADD213PS geluConst<>+640(SB), Y0, Y2
	VFMADD213PS geluConst<>+672(SB), Y0, Y2
	VFMADD213PS geluConst<>+704(SB), Y0, Y2
	VMULPS Y0, Y0, Y3
	VFMADD213PS Y0, Y3, Y2
	VADDPS geluConst<>+96(SB), Y2, Y2
	VCVTPS2DQ Y1, Y1
	VPADDD geluConst<>+736(SB), Y1, Y1
	VPSLLD $23, Y1, Y1
	VMULPS Y1, Y2, Y0
	VMULPS geluConst<>+768(SB), Y0, Y0
	VFMADD231PS Y8, Y0, Y14
	VMOVUPS (DX), Y15
	VMOVUPS (DI), Y1
	VFMADD231PS Y15, Y14, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ dloop
ddone:
	VZEROUPPER
	RET
