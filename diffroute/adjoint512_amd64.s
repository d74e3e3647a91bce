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
#define A_A 264
#define A_A8 272
#define A_P8 280

// func adjointAVX512(k *adjKernel)
//
// adjointAVX2 eight sub-steps at a time (nv counts vectors of eight): a
// suffix scan s[j] = Σ_{i≥j} a^(i−j)·g[i] in three shift-and-FMA rounds
// (zeros shifted in from the top), λ[j] = a^(8−j)·λ[n+8] + s[j], and the
// only loop-carried chain λ[n] ← a⁸·λ[n+8] + s[0].
TEXT ·adjointAVX512(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ A_UBD(DI), SI
	MOVQ A_Y(DI), R8
	MOVQ A_U(DI), R9
	MOVQ A_GY(DI), R10
	MOVQ A_SUML(DI), R11
	MOVQ A_FIRSTL(DI), R12
	MOVQ A_NQ(DI), CX
	MOVQ A_NV(DI), R13
	VBROADCASTSD A_B0(DI), Z0
	VBROADCASTSD A_B1(DI), Z1
	VBROADCASTSD A_A(DI), Z2
	VMULPD Z2, Z2, Z3 // a²
	VMULPD Z3, Z3, Z4 // a⁴
	VMOVUPD A_P8(DI), Z5 // [a⁸, a⁷, …, a]
	VBROADCASTSD A_LAM(DI), Z6
	VBROADCASTSD A_A8(DI), Z16
	VPXORQ Z20, Z20, Z20
	VPXORQ Z8, Z8, Z8
	VPXORQ Z9, Z9, Z9
	VPXORQ Z18, Z18, Z18
	MOVQ $1, R14
	KMOVW R14, K1 // lane 0
	MOVQ $0x80, R14
	KMOVW R14, K2 // lane 7
	TESTQ CX, CX
	JZ adone8
	MOVQ CX, BX
	IMULQ R13, BX
	SHLQ $3, BX
	SUBQ $8, BX // fine index of the last vector

astep8:
	DECQ CX
	VMOVSD (R10)(CX*8), X12 // gy[q]
	VMULSD A_WSUM(DI), X12, X13
	VBROADCASTSD X13, Z7 // c = wsum·gy[q] on every sub-step
	VMULSD A_WEND(DI), X12, X13
	VMOVSD A_GYN(DI), X14
	VFMADD231SD A_WPREV(DI), X14, X13 // extra on the last sub-step
	VMOVSD X12, A_GYN(DI)
	VBROADCASTSD X13, Z13
	VPXORQ Z15, Z15, Z15
	VBLENDMPD Z13, Z15, K2, Z15 // [0, …, 0, extra]
	VADDPD Z7, Z15, Z15 // [c, …, c, c + extra] for the step's last vector
	VPXORQ Z11, Z11, Z11
	MOVQ R13, DX

avec8:
	VMOVUPD (SI)(BX*8), Z10
	VADDPD Z15, Z10, Z10 // g = ∂L/∂y + c (+ extra)
	VMOVAPD Z7, Z15 // c alone for the step's other vectors
	VALIGNQ $1, Z10, Z20, Z13
	VFMADD231PD Z13, Z2, Z10 // s1 = g + a·g[j+1]
	VALIGNQ $2, Z10, Z20, Z13
	VFMADD231PD Z13, Z3, Z10 // s2 = s1 + a²·s1[j+2]
	VALIGNQ $4, Z10, Z20, Z13
	VFMADD231PD Z13, Z4, Z10 // s3 = s2 + a⁴·s2[j+4]
	VMOVAPD Z10, Z13
	VFMADD231PD Z6, Z5, Z13 // λ = s3 + [a⁸, …, a]·λ[n+8]
	VALIGNQ $1, Z13, Z6, Z14 // λ[n+1..n+8]
	VBROADCASTSD X10, Z12
	VFMADD213PD Z12, Z16, Z6 // λ[n] = a⁸·λ[n+8] + s3[0]
	VMULPD Z1, Z14, Z14
	VFMADD231PD Z13, Z0, Z14 // ∂L/∂u = b0·λ + b1·λ[+1]
	TESTQ BX, BX
	JZ afirst8
	VMOVUPD -8(R8)(BX*8), Z12 // y[n−1..n+6]
	VFMADD231PD Z13, Z12, Z18
	VMOVUPD Z14, (R8)(BX*8)
	VMOVUPD (R9)(BX*8), Z12
	VFMADD231PD Z13, Z12, Z8
	VMOVUPD -8(R9)(BX*8), Z12
	VFMADD231PD Z13, Z12, Z9
	JMP anext8

afirst8:
	// The block's first vector: y[−1] and u[−1] come from the state.
	VMOVUPD (R8), Z12
	VALIGNQ $7, Z20, Z12, Z12
	VBROADCASTSD A_Y0(DI), Z15
	VBLENDMPD Z15, Z12, K1, Z12
	VFMADD231PD Z13, Z12, Z18
	VMOVUPD Z14, (R8)
	VMOVUPD (R9), Z12
	VFMADD231PD Z13, Z12, Z8
	VALIGNQ $7, Z20, Z12, Z12
	VBROADCASTSD A_UP0(DI), Z15
	VBLENDMPD Z15, Z12, K1, Z12
	VFMADD231PD Z13, Z12, Z9
	VMOVAPD Z7, Z15

anext8:
	VADDPD Z13, Z11, Z11
	SUBQ $8, BX
	DECQ DX
	JNZ avec8

	// Σλ over the step and λ at its first sub-step.
	VEXTRACTF64X4 $1, Z11, Y12
	VADDPD Y12, Y11, Y11
	VEXTRACTF128 $1, Y11, X12
	VADDPD X12, X11, X11
	VPERMILPD $1, X11, X12
	VADDSD X12, X11, X11
	VMOVSD X11, (R11)(CX*8)
	VMOVSD X6, (R12)(CX*8)
	TESTQ CX, CX
	JNZ astep8

adone8:
	VMOVSD X6, A_LAM(DI)
	VEXTRACTF64X4 $1, Z8, Y12
	VADDPD Y12, Y8, Y8
	VEXTRACTF128 $1, Y8, X12
	VADDPD X12, X8, X8
	VPERMILPD $1, X8, X12
	VADDSD X12, X8, X8
	VMOVSD X8, A_DU(DI)
	VEXTRACTF64X4 $1, Z9, Y12
	VADDPD Y12, Y9, Y9
	VEXTRACTF128 $1, Y9, X12
	VADDPD X12, X9, X9
	VPERMILPD $1, X9, X12
	VADDSD X12, X9, X9
	VMOVSD X9, A_DUP(DI)
	VMOVAPD Z18, Z10
	VEXTRACTF64X4 $1, Z10, Y12
	VADDPD Y12, Y10, Y10
	VEXTRACTF128 $1, Y10, X12
	VADDPD X12, X10, X10
	VPERMILPD $1, X10, X12
	VADDSD X12, X10, X10
	VMOVSD X10, A_DY(DI)
	VZEROUPPER
	RET
