#include "textflag.h"

// Field offsets of adjKernel (adjoint_amd64.go).
#define A_UBD 0
#define A_Y 8
#define A_U 16
#define A_GY 24
#define A_SUML 32
#define A_FIRSTL 40
#define A_NQ 48
#define A_NV 56
#define A_B0 64
#define A_B1 72
#define A_A4 80
#define A_M1 88
#define A_M2 120
#define A_P 152
#define A_LAM 184
#define A_Y0 192
#define A_UP0 200
#define A_WSUM 208
#define A_WEND 216
#define A_WPREV 224
#define A_GYN 232
#define A_DU 240
#define A_DUP 248
#define A_DY 256

// func adjointAVX2(k *adjKernel)
//
// Backwards in time, four sub-steps per iteration: g = ȳ[n..n+3], a suffix
// scan s[j] = Σ_{i≥j} a^(i−j)·g[i] (two shift-and-FMA rounds), then
// λ[j] = a^(4−j)·λ[n+4] + s[j]. The only loop-carried chain is
// λ[n] ← a⁴·λ[n+4] + s[0]. ∂L/∂u = b0·λ + b1·λ shifted by one overwrites y
// after y[n−1..n+2] has been read.
TEXT ·adjointAVX2(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ A_UBD(DI), SI
	MOVQ A_Y(DI), R8
	MOVQ A_U(DI), R9
	MOVQ A_GY(DI), R10
	MOVQ A_SUML(DI), R11
	MOVQ A_FIRSTL(DI), R12
	MOVQ A_NQ(DI), CX
	MOVQ A_NV(DI), R13
	VBROADCASTSD A_B0(DI), Y0
	VBROADCASTSD A_B1(DI), Y1
	VMOVUPD A_M1(DI), Y2
	VMOVUPD A_M2(DI), Y3
	VMOVUPD A_P(DI), Y4
	VBROADCASTSD A_A4(DI), Y5
	VBROADCASTSD A_LAM(DI), Y6
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	TESTQ CX, CX
	JZ adone
	MOVQ CX, BX
	IMULQ R13, BX
	SHLQ $2, BX
	SUBQ $4, BX // fine index of the last vector

astep:
	DECQ CX
	VMOVSD (R10)(CX*8), X12 // gy[q]
	VMULSD A_WSUM(DI), X12, X13
	VBROADCASTSD X13, Y7 // c = wsum·gy[q] on every sub-step
	VMULSD A_WEND(DI), X12, X13
	VMOVSD A_GYN(DI), X14
	VFMADD231SD A_WPREV(DI), X14, X13 // extra on the last sub-step
	VMOVSD X12, A_GYN(DI)
	VBROADCASTSD X13, Y13
	VXORPD Y15, Y15, Y15
	VBLENDPD $8, Y13, Y15, Y15 // [0, 0, 0, extra]
	VXORPD Y11, Y11, Y11
	MOVQ R13, DX

avec:
	VMOVUPD (SI)(BX*8), Y12
	VADDPD Y7, Y12, Y12
	VADDPD Y15, Y12, Y12
	VXORPD Y15, Y15, Y15
	VPERMPD $0xF9, Y12, Y13
	VFMADD231PD Y13, Y2, Y12 // s1 = g + [a,a,a,0]·g[j+1]
	VPERMPD $0xFE, Y12, Y13
	VFMADD231PD Y13, Y3, Y12 // s2 = s1 + [a²,a²,0,0]·s1[j+2]
	VMOVAPD Y12, Y13
	VFMADD231PD Y6, Y4, Y13 // λ = s2 + [a⁴,a³,a²,a]·λ[n+4]
	VPERMPD $0xF9, Y13, Y14
	VBLENDPD $8, Y6, Y14, Y14 // λ[n+1..n+4]
	VPERMPD $0x00, Y12, Y12
	VFMADD213PD Y12, Y5, Y6 // λ[n] = a⁴·λ[n+4] + s2[0]
	VMULPD Y1, Y14, Y14
	VFMADD231PD Y13, Y0, Y14 // ∂L/∂u = b0·λ + b1·λ[+1]
	TESTQ BX, BX
	JZ afirst
	VMOVUPD -8(R8)(BX*8), Y12 // y[n−1..n+2]
	VFMADD231PD Y13, Y12, Y10
	VMOVUPD Y14, (R8)(BX*8)
	VMOVUPD (R9)(BX*8), Y12
	VFMADD231PD Y13, Y12, Y8
	VMOVUPD -8(R9)(BX*8), Y12
	VFMADD231PD Y13, Y12, Y9
	JMP anext

afirst:
	// The block's first vector: y[−1] and u[−1] come from the state.
	VMOVUPD (R8), Y12
	VPERMPD $0x90, Y12, Y12
	VBROADCASTSD A_Y0(DI), Y15
	VBLENDPD $1, Y15, Y12, Y12
	VFMADD231PD Y13, Y12, Y10
	VMOVUPD Y14, (R8)
	VMOVUPD (R9), Y12
	VFMADD231PD Y13, Y12, Y8
	VPERMPD $0x90, Y12, Y12
	VBROADCASTSD A_UP0(DI), Y15
	VBLENDPD $1, Y15, Y12, Y12
	VFMADD231PD Y13, Y12, Y9
	VXORPD Y15, Y15, Y15

anext:
	VADDPD Y13, Y11, Y11
	SUBQ $4, BX
	DECQ DX
	JNZ avec

	// Σλ over the step and λ at its first sub-step.
	VEXTRACTF128 $1, Y11, X12
	VADDPD X12, X11, X11
	VPERMILPD $1, X11, X12
	VADDSD X12, X11, X11
	VMOVSD X11, (R11)(CX*8)
	VMOVSD X6, (R12)(CX*8)
	TESTQ CX, CX
	JNZ astep

adone:
	VMOVSD X6, A_LAM(DI)
	VEXTRACTF128 $1, Y8, X12
	VADDPD X12, X8, X8
	VPERMILPD $1, X8, X12
	VADDSD X12, X8, X8
	VMOVSD X8, A_DU(DI)
	VEXTRACTF128 $1, Y9, X12
	VADDPD X12, X9, X9
	VPERMILPD $1, X9, X12
	VADDSD X12, X9, X9
	VMOVSD X9, A_DUP(DI)
	VEXTRACTF128 $1, Y10, X12
	VADDPD X12, X10, X10
	VPERMILPD $1, X10, X12
	VADDSD X12, X10, X10
	VMOVSD X10, A_DY(DI)
	VZEROUPPER
	RET

// func addVec(dst, a, b *float64, n int)
//
// dst[k] = a[k] + b[k] for k < n (dst may be a or b), four at a time.
TEXT ·addVec(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	XORQ AX, AX
	MOVQ CX, BX
	ANDQ $-4, BX

vloop:
	CMPQ AX, BX
	JGE vtail
	VMOVUPD (SI)(AX*8), Y0
	VADDPD (DX)(AX*8), Y0, Y0
	VMOVUPD Y0, (DI)(AX*8)
	ADDQ $4, AX
	JMP vloop

vtail:
	CMPQ AX, CX
	JGE vdone
	VMOVSD (SI)(AX*8), X0
	VADDSD (DX)(AX*8), X0, X0
	VMOVSD X0, (DI)(AX*8)
	INCQ AX
	JMP vtail

vdone:
	VZEROUPPER
	RET
