#include "textflag.h"

// Field offsets of sec8Kernel (section512_amd64.go).
#define E_INFLOW 0
#define E_LAT 8
#define E_DST 16
#define E_OUT 24
#define E_NQ 32
#define E_NV 40
#define E_B0 48
#define E_B1 56
#define E_KC 64
#define E_A 72
#define E_A2 80
#define E_A4 88
#define E_A8 96
#define E_PW 104
#define E_Y 168
#define E_UP 176
#define E_LP 184
#define E_RAPID 192
#define E_ADD 200
#define E_WSUM 208
#define E_WEND 216
#define E_WPREV 224

// func sectionAVX512(k *sec8Kernel)
//
// sectionAVX2 eight sub-steps at a time: g = b0·u[n] + b1·u[n−1] + c, a
// prefix scan s[j] = Σ_{i≤j} a^(j−i)·g[i] in three shift-and-FMA rounds
// (lanes shifted in from zero), y[j] = a^(j+1)·y[−1] + s[j], and the only
// loop-carried chain y[−1] ← a⁸·y[−1] + s[7]: one FMA per eight sub-steps.
// float32 inflow, runoff, dst and out only.
TEXT ·sectionAVX512(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ E_INFLOW(DI), SI
	MOVQ E_LAT(DI), R8
	MOVQ E_DST(DI), R9
	MOVQ E_OUT(DI), R10
	MOVQ E_NQ(DI), R12
	MOVQ E_NV(DI), R13
	MOVQ E_ADD(DI), AX
	VBROADCASTSD E_B0(DI), Z0
	VBROADCASTSD E_B1(DI), Z1
	VBROADCASTSD E_A(DI), Z2
	VBROADCASTSD E_A2(DI), Z3
	VBROADCASTSD E_A4(DI), Z4
	VMOVUPD E_PW(DI), Z5
	VBROADCASTSD E_Y(DI), Z6
	VBROADCASTSD E_A8(DI), Z7
	VPXORQ Z20, Z20, Z20 // zeros shifted in
	MOVQ $7, R14
	VPBROADCASTQ R14, Z18 // index of the last lane
	MOVQ $1, R14
	KMOVW R14, K1 // lane 0
	XORQ BX, BX // fine index n
	XORQ CX, CX // step q
	TESTQ R12, R12
	JZ done

step:
	VXORPD X15, X15, X15
	VCVTSS2SD (R8)(CX*4), X15, X15 // l
	VMULSD E_KC(DI), X15, X13
	VBROADCASTSD X13, Z16 // c = (b0+b1)·l
	MOVQ E_RAPID(DI), DX
	TESTQ DX, DX
	JNZ rapid
	// lti: the first sub-step sees the previous step's runoff:
	// c + b1·(lp − l) in lane 0 only.
	VMOVSD E_LP(DI), X14
	VSUBSD X15, X14, X14
	VMULSD E_B1(DI), X14, X14
	VADDPD Z14, Z16, Z17
	JMP stepset

rapid:
	VMOVAPD Z16, Z17

stepset:
	VMOVSD X15, E_LP(DI)
	VMOVAPD X6, X12 // y at the end of the previous step
	VXORPD X9, X9, X9 // zero idiom: no wait on the previous step
	MOVQ R13, DX

vec:
	VCVTPS2PD (SI)(BX*4), Z10 // u[n..n+7]
	TESTQ BX, BX
	JZ firstprev
	VCVTPS2PD -4(SI)(BX*4), Z11 // u[n−1..n+6]
	JMP haveprev

firstprev:
	VALIGNQ $7, Z20, Z10, Z11
	VBROADCASTSD E_UP(DI), Z15
	VBLENDMPD Z15, Z11, K1, Z11

haveprev:
	VFMADD213PD Z17, Z0, Z10  // g = b0·u + c
	VFMADD231PD Z11, Z1, Z10  // g += b1·u[−1]
	VALIGNQ $7, Z20, Z10, Z13
	VFMADD231PD Z13, Z2, Z10  // s1 = g + a·g[j−1]
	VALIGNQ $6, Z20, Z10, Z13
	VFMADD231PD Z13, Z3, Z10  // s2 = s1 + a²·s1[j−2]
	VALIGNQ $4, Z20, Z10, Z13
	VFMADD231PD Z13, Z4, Z10  // s3 = s2 + a⁴·s2[j−4]
	VMOVAPD Z10, Z14
	VFMADD231PD Z6, Z5, Z14   // y = [a, …, a⁸]·y[−1] + s3
	VPERMPD Z10, Z18, Z13
	VFMADD213PD Z13, Z7, Z6   // y[−1] = a⁸·y[−1] + s3[7] (= y[7])
	VCVTPD2PS Z14, Y13
	TESTQ AX, AX
	JZ store
	VADDPS (R9)(BX*4), Y13, Y13

store:
	VMOVUPS Y13, (R9)(BX*4)
	VADDPD Z14, Z9, Z9
	VMOVAPD Z16, Z17
	ADDQ $8, BX
	DECQ DX
	JNZ vec

	// out[q] = wsum·Σy + wend·y_end + wprev·y_end(previous step)
	VEXTRACTF64X4 $1, Z9, Y13
	VADDPD Y13, Y9, Y9
	VEXTRACTF128 $1, Y9, X13
	VADDPD X13, X9, X9
	VPERMILPD $1, X9, X13
	VADDSD X13, X9, X9
	VMULSD E_WSUM(DI), X9, X9
	VFMADD231SD E_WEND(DI), X6, X9
	VFMADD231SD E_WPREV(DI), X12, X9
	VCVTSD2SS X9, X9, X9
	VMOVSS X9, (R10)(CX*4)
	INCQ CX
	CMPQ CX, R12
	JLT step

	VMOVSD X6, E_Y(DI)
	VXORPD X15, X15, X15
	VCVTSS2SD -4(SI)(BX*4), X15, X15
	VMOVSD X15, E_UP(DI)

done:
	VZEROUPPER
	RET

#define E_LAT64 232
#define E_STEP64 240
#define E_IN2 248
#define E_USUM 256

// func sectionAVX512x64(k *sec8Kernel)
//
// sectionAVX512 with float64 inflow and dst (stored, never added), the
// runoff and out in float64 where lat64 and step64 say so: the tiled
// adjoint's forward and recompute passes. Where in2 is not nil the inflow
// is inflow + in2 (a junction of two reaches), stored into usum where that
// is not nil.
TEXT ·sectionAVX512x64(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ E_IN2(DI), AX
	MOVQ E_USUM(DI), R11
	MOVQ E_INFLOW(DI), SI
	MOVQ E_LAT(DI), R8
	MOVQ E_DST(DI), R9
	MOVQ E_OUT(DI), R10
	MOVQ E_NQ(DI), R12
	MOVQ E_NV(DI), R13
	VBROADCASTSD E_B0(DI), Z0
	VBROADCASTSD E_B1(DI), Z1
	VBROADCASTSD E_A(DI), Z2
	VBROADCASTSD E_A2(DI), Z3
	VBROADCASTSD E_A4(DI), Z4
	VMOVUPD E_PW(DI), Z5
	VBROADCASTSD E_Y(DI), Z6
	VBROADCASTSD E_A8(DI), Z7
	VPXORQ Z20, Z20, Z20 // zeros shifted in
	MOVQ $7, R14
	VPBROADCASTQ R14, Z18 // index of the last lane
	MOVQ $1, R14
	KMOVW R14, K1 // lane 0
	XORQ BX, BX // fine index n
	XORQ CX, CX // step q
	TESTQ R12, R12
	JZ done64

step64:
	MOVQ E_LAT64(DI), DX
	TESTQ DX, DX
	JZ lat32
	VMOVSD (R8)(CX*8), X15 // l
	JMP havelat

lat32:
	VXORPD X15, X15, X15
	VCVTSS2SD (R8)(CX*4), X15, X15 // l

havelat:
	VMULSD E_KC(DI), X15, X13
	VBROADCASTSD X13, Z16 // c = (b0+b1)·l
	MOVQ E_RAPID(DI), DX
	TESTQ DX, DX
	JNZ rapid64
	// lti: c + b1·(lp − l) in lane 0 only.
	VMOVSD E_LP(DI), X14
	VSUBSD X15, X14, X14
	VMULSD E_B1(DI), X14, X14
	VADDPD Z14, Z16, Z17
	JMP stepset64

rapid64:
	VMOVAPD Z16, Z17

stepset64:
	VMOVSD X15, E_LP(DI)
	MOVQ R13, DX

vec64:
	VMOVUPD (SI)(BX*8), Z10 // u[n..n+7]
	TESTQ AX, AX
	JZ one64
	VADDPD (AX)(BX*8), Z10, Z10 // + in2[n..n+7]
	TESTQ R11, R11
	JZ two64
	VMOVUPD Z10, (R11)(BX*8)

two64:
	TESTQ BX, BX
	JZ firstprev64
	VMOVUPD -8(SI)(BX*8), Z11
	VADDPD -8(AX)(BX*8), Z11, Z11 // u[n−1..n+6]
	JMP haveprev64

one64:
	TESTQ BX, BX
	JZ firstprev64
	VMOVUPD -8(SI)(BX*8), Z11 // u[n−1..n+6]
	JMP haveprev64

firstprev64:
	VALIGNQ $7, Z20, Z10, Z11
	VBROADCASTSD E_UP(DI), Z15
	VBLENDMPD Z15, Z11, K1, Z11

haveprev64:
	VFMADD213PD Z17, Z0, Z10  // g = b0·u + c
	VFMADD231PD Z11, Z1, Z10  // g += b1·u[−1]
	VALIGNQ $7, Z20, Z10, Z13
	VFMADD231PD Z13, Z2, Z10  // s1 = g + a·g[j−1]
	VALIGNQ $6, Z20, Z10, Z13
	VFMADD231PD Z13, Z3, Z10  // s2 = s1 + a²·s1[j−2]
	VALIGNQ $4, Z20, Z10, Z13
	VFMADD231PD Z13, Z4, Z10  // s3 = s2 + a⁴·s2[j−4]
	VMOVAPD Z10, Z14
	VFMADD231PD Z6, Z5, Z14   // y = [a, …, a⁸]·y[−1] + s3
	VPERMPD Z10, Z18, Z13
	VFMADD213PD Z13, Z7, Z6   // y[−1] = a⁸·y[−1] + s3[7] (= y[7])
	VMOVUPD Z14, (R9)(BX*8)
	VMOVAPD Z16, Z17
	ADDQ $8, BX
	DECQ DX
	JNZ vec64

	INCQ CX
	CMPQ CX, R12
	JLT step64

	VMOVSD E_Y(DI), X12 // y before the block, for the reported values
	VMOVSD X6, E_Y(DI)
	VMOVSD -8(SI)(BX*8), X15
	TESTQ AX, AX
	JZ lastup64
	VADDSD -8(AX)(BX*8), X15, X15

lastup64:
	VMOVSD X15, E_UP(DI)

	// out[q] = wsum·Σy + wend·y_end + wprev·y_end(previous step), unless
	// out is nil (the adjoint's recompute wants the fine outflows only).
	// A pass of its own over dst, after the scan: per-step reductions
	// inside the scan's loop stall it.
	TESTQ R10, R10
	JZ done64
	MOVQ E_STEP64(DI), R14
	XORQ BX, BX
	XORQ CX, CX

ostep64:
	MOVQ R13, DX
	VMOVUPD (R9)(BX*8), Z9
	ADDQ $8, BX
	DECQ DX
	JZ oreduce64

oadd64:
	VADDPD (R9)(BX*8), Z9, Z9
	ADDQ $8, BX
	DECQ DX
	JNZ oadd64

oreduce64:
	VMOVSD -8(R9)(BX*8), X14 // y at the step's end
	VEXTRACTF64X4 $1, Z9, Y13
	VADDPD Y13, Y9, Y9
	VEXTRACTF128 $1, Y9, X13
	VADDPD X13, X9, X9
	VPERMILPD $1, X9, X13
	VADDSD X13, X9, X9
	VMULSD E_WSUM(DI), X9, X9
	VFMADD231SD E_WEND(DI), X14, X9
	VFMADD231SD E_WPREV(DI), X12, X9
	VMOVAPD X14, X12
	TESTQ R14, R14
	JZ oout32
	VMOVSD X9, (R10)(CX*8)
	JMP onext64

oout32:
	VCVTSD2SS X9, X9, X9
	VMOVSS X9, (R10)(CX*4)

onext64:
	INCQ CX
	CMPQ CX, R12
	JLT ostep64

done64:
	VZEROUPPER
	RET
