#include "textflag.h"

// Field offsets of secKernel (section_amd64.go).
#define K_INFLOW 0
#define K_LAT 8
#define K_DST 16
#define K_OUT 24
#define K_NQ 32
#define K_NV 40
#define K_B0 48
#define K_B1 56
#define K_KC 64
#define K_A4 72
#define K_M1 80
#define K_M2 112
#define K_P 144
#define K_Y 176
#define K_UP 184
#define K_LP 192
#define K_RAPID 200
#define K_ADD 208
#define K_WSUM 216
#define K_WEND 224
#define K_WPREV 232
#define K_IN64 240
#define K_OUT64 248
#define K_LAT64 256
#define K_STEP64 264

// func sectionAVX2(k *secKernel)
//
// Four sub-steps per iteration: g = b0·u[n] + b1·u[n−1] + c, an in-register
// prefix scan s[j] = Σ_{i≤j} a^(j−i)·g[i] (two shift-and-FMA rounds), then
// y[j] = a^(j+1)·y[−1] + s[j]. The only loop-carried chain is
// y[−1] ← a⁴·y[−1] + s[3], one FMA per four sub-steps. Each step's reported
// value is wsum·Σy + wend·y_end + wprev·y_end(previous step).
TEXT ·sectionAVX2(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ K_INFLOW(DI), SI
	MOVQ K_LAT(DI), R8
	MOVQ K_DST(DI), R9
	MOVQ K_OUT(DI), R10
	MOVQ K_NQ(DI), R12
	MOVQ K_NV(DI), R13
	MOVQ K_ADD(DI), AX
	MOVQ K_IN64(DI), R11
	VBROADCASTSD K_B0(DI), Y0
	VBROADCASTSD K_B1(DI), Y1
	VMOVUPD K_M1(DI), Y2
	VMOVUPD K_M2(DI), Y3
	VMOVUPD K_P(DI), Y4
	VBROADCASTSD K_A4(DI), Y5
	VBROADCASTSD K_Y(DI), Y6
	XORQ BX, BX // fine index n
	XORQ CX, CX // step q
	TESTQ R12, R12
	JZ done

step:
	VXORPD X15, X15, X15
	CMPQ K_LAT64(DI), $0
	JNE lat64
	VCVTSS2SD (R8)(CX*4), X15, X15 // l
	JMP latset

lat64:
	VMOVSD (R8)(CX*8), X15

latset:
	VMULSD K_KC(DI), X15, X13
	VBROADCASTSD X13, Y7 // c = (b0+b1)·l
	MOVQ K_RAPID(DI), DX
	TESTQ DX, DX
	JNZ rapid
	// lti: the first sub-step sees the previous step's runoff:
	// c + b1·(lp − l) in lane 0 only.
	VMOVSD K_LP(DI), X14
	VSUBSD X15, X14, X14
	VMULSD K_B1(DI), X14, X14
	VADDPD Y14, Y7, Y8
	JMP stepset

rapid:
	VMOVUPD Y7, Y8

stepset:
	VMOVSD X15, K_LP(DI)
	VMOVAPD X6, X12 // y at the end of the previous step
	VXORPD Y9, Y9, Y9
	MOVQ R13, DX

vec:
	TESTQ R11, R11
	JNZ load64
	VCVTPS2PD (SI)(BX*4), Y10 // u[n..n+3]
	TESTQ BX, BX
	JZ firstprev
	VCVTPS2PD -4(SI)(BX*4), Y11 // u[n−1..n+2]
	JMP haveprev

load64:
	VMOVUPD (SI)(BX*8), Y10
	TESTQ BX, BX
	JZ firstprev
	VMOVUPD -8(SI)(BX*8), Y11
	JMP haveprev

firstprev:
	VPERMPD $0x90, Y10, Y11
	VBROADCASTSD K_UP(DI), Y15
	VBLENDPD $1, Y15, Y11, Y11

haveprev:
	VFMADD213PD Y8, Y0, Y10  // g = b0·u + c
	VFMADD231PD Y11, Y1, Y10 // g += b1·u[−1]
	VPERMPD $0x90, Y10, Y13
	VFMADD231PD Y13, Y2, Y10 // s1 = g + [0,a,a,a]·g[j−1]
	VPERMPD $0x40, Y10, Y13
	VFMADD231PD Y13, Y3, Y10 // s2 = s1 + [0,0,a²,a²]·s1[j−2]
	VMOVUPD Y10, Y14
	VFMADD231PD Y6, Y4, Y14  // y = [a,a²,a³,a⁴]·y[−1] + s2
	VPERMPD $0xFF, Y10, Y13
	VFMADD213PD Y13, Y5, Y6  // y[−1] = a⁴·y[−1] + s2[3] (= y[3])
	CMPQ K_OUT64(DI), $0
	JNE store64
	VCVTPD2PSY Y14, X13
	TESTQ AX, AX
	JZ store
	VADDPS (R9)(BX*4), X13, X13

store:
	VMOVUPS X13, (R9)(BX*4)

stored:
	VADDPD Y14, Y9, Y9
	VMOVUPD Y7, Y8
	ADDQ $4, BX
	DECQ DX
	JNZ vec

	// out[q] = wsum·Σy + wend·y_end + wprev·y_end(previous step)
	VEXTRACTF128 $1, Y9, X13
	VADDPD X13, X9, X9
	VPERMILPD $1, X9, X13
	VADDSD X13, X9, X9
	VMULSD K_WSUM(DI), X9, X9
	VFMADD231SD K_WEND(DI), X6, X9
	VFMADD231SD K_WPREV(DI), X12, X9
	CMPQ K_STEP64(DI), $0
	JNE step64
	VCVTSD2SS X9, X9, X9
	VMOVSS X9, (R10)(CX*4)
	JMP stepped

step64:
	VMOVSD X9, (R10)(CX*8)

stepped:
	INCQ CX
	CMPQ CX, R12
	JLT step

	VMOVSD X6, K_Y(DI)
	VXORPD X15, X15, X15
	TESTQ R11, R11
	JNZ last64
	VCVTSS2SD -4(SI)(BX*4), X15, X15
	JMP lastset

last64:
	VMOVSD -8(SI)(BX*8), X15

lastset:
	VMOVSD X15, K_UP(DI)

done:
	VZEROUPPER
	RET

store64:
	// An intermediate section of a cascade: its float64 outflow is the
	// next section's inflow.
	VMOVUPD Y14, (R9)(BX*8)
	JMP stored

// func prefetchLines(p unsafe.Pointer, n int)
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	ADDQ SI, CX

loop:
	PREFETCHT0 (SI)
	ADDQ $64, SI
	CMPQ SI, CX
	JLT loop
	RET
