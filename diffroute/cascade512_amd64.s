#include "textflag.h"

// Field offsets of casc8Kernel (cascade512_amd64.go).
#define C_INFLOW 0
#define C_LAT 8
#define C_DST 16
#define C_OUT 24
#define C_SECS 32
#define C_RING 40
#define C_NQ 48
#define C_NV 56
#define C_NSEC 64
#define C_MASK 72
#define C_STEPB 80
#define C_ADD 88
#define C_WSUM 96
#define C_WEND 104
#define C_WPREV 112

// Offsets in one section's block of 16 float64 (cascadeSecBlock).
#define S_B0 0
#define S_A 8
#define S_A2 16
#define S_A4 24
#define S_A8 32
#define S_Y 40
#define S_PW 64

// LOADSEC loads the section block at R14: b0, a, a², a⁴, a⁸, [a … a⁸] and
// its last output (the carry).
#define LOADSEC \
	VBROADCASTSD S_B0(R14), Z0; \
	VBROADCASTSD S_A(R14), Z1; \
	VBROADCASTSD S_A2(R14), Z2; \
	VBROADCASTSD S_A4(R14), Z3; \
	VBROADCASTSD S_A8(R14), Z4; \
	VMOVUPD S_PW(R14), Z5; \
	VBROADCASTSD S_Y(R14), Z6

// SCAN turns g (Z10, eight sub-steps) into the section's outflows
// y[j] = a^(j+1)·y[−1] + Σ_{i≤j} a^(j−i)·g[i] and advances the carry
// y[−1] (Z6) by eight sub-steps: a⁸·y[−1] + s[7], off y's chain.
#define SCAN \
	VALIGNQ $7, Z20, Z10, Z13; \
	VFMADD231PD Z13, Z1, Z10; \
	VALIGNQ $6, Z20, Z10, Z13; \
	VFMADD231PD Z13, Z2, Z10; \
	VALIGNQ $4, Z20, Z10, Z13; \
	VFMADD231PD Z13, Z3, Z10; \
	VPERMPD Z10, Z18, Z11; \
	VFMADD231PD Z6, Z5, Z10; \
	VFMADD213PD Z11, Z4, Z6

// func cascadeAVX512(k *casc8Kernel)
//
// A cascade of sections without an inflow-lag term (B1 = 0: Nash
// reservoirs) in one pass, eight sub-steps a vector as sectionAVX512, the
// sections pipelined by runoff step: iteration it runs the first section on
// step it, section k on step it−k, so each section's input (the previous
// section's outflow of that step, in a ring of step buffers in L1) was made
// an iteration earlier and the sections' chains overlap instead of queueing
// behind each other. The last section adds (or stores) float32 outflows
// into dst and writes each step's reported value into out.
TEXT ·cascadeAVX512(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ C_INFLOW(DI), SI
	MOVQ C_LAT(DI), R8
	MOVQ C_DST(DI), R9
	MOVQ C_OUT(DI), R10
	MOVQ C_SECS(DI), BX
	MOVQ C_RING(DI), R11
	MOVQ C_NQ(DI), R12
	MOVQ C_NV(DI), R13
	VPXORQ Z20, Z20, Z20 // zeros shifted in
	MOVQ $7, AX
	VPBROADCASTQ AX, Z18 // index of the last lane
	XORQ CX, CX          // iteration
	TESTQ R12, R12
	JZ cdone

citer:
	// First section on step it: g = b0·u + b0·l.
	CMPQ CX, R12
	JGE cmid
	MOVQ BX, R14
	LOADSEC
	VXORPD X15, X15, X15
	VCVTSS2SD (R8)(CX*4), X15, X15
	VMULSD S_B0(BX), X15, X15
	VBROADCASTSD X15, Z16
	MOVQ CX, R14
	ANDQ C_MASK(DI), R14
	IMULQ C_STEPB(DI), R14
	ADDQ R11, R14
	MOVQ R13, DX

cfirst:
	VCVTPS2PD (SI), Z10
	VFMADD213PD Z16, Z0, Z10
	SCAN
	VMOVUPD Z10, (R14)
	ADDQ $32, SI
	ADDQ $64, R14
	DECQ DX
	JNZ cfirst
	VMOVSD X6, S_Y(BX)

cmid:
	// Middle sections k = 1 … nsec−2 on step it−k: g = b0·x.
	MOVQ $1, AX

cmidloop:
	MOVQ C_NSEC(DI), DX
	DECQ DX
	CMPQ AX, DX
	JGE clast
	MOVQ CX, DX
	SUBQ AX, DX
	JLT cmidnext
	CMPQ DX, R12
	JGE cmidnext
	MOVQ AX, R14
	SHLQ $7, R14
	ADDQ BX, R14
	LOADSEC
	MOVQ DX, R14
	ANDQ C_MASK(DI), R14
	IMULQ C_STEPB(DI), R14
	ADDQ R11, R14
	MOVQ R13, DX

cmidvec:
	VMULPD (R14), Z0, Z10
	SCAN
	VMOVUPD Z10, (R14)
	ADDQ $64, R14
	DECQ DX
	JNZ cmidvec
	MOVQ AX, R14
	SHLQ $7, R14
	ADDQ BX, R14
	VMOVSD X6, S_Y(R14)

cmidnext:
	INCQ AX
	JMP cmidloop

clast:
	// Last section (k = nsec−1) on step it−k, into dst and out.
	MOVQ C_NSEC(DI), AX
	DECQ AX
	MOVQ CX, DX
	SUBQ AX, DX
	JLT cnext
	CMPQ DX, R12
	JGE cnext
	MOVQ AX, R14
	SHLQ $7, R14
	ADDQ BX, R14
	LOADSEC
	MOVQ DX, R14
	ANDQ C_MASK(DI), R14
	IMULQ C_STEPB(DI), R14
	ADDQ R11, R14
	VMOVAPD X6, X12      // the previous step's last outflow
	VXORPD X9, X9, X9    // the step's sum
	MOVQ C_ADD(DI), AX
	MOVQ R13, DX

clastvec:
	VMULPD (R14), Z0, Z10
	SCAN
	VADDPD Z10, Z9, Z9
	VCVTPD2PS Z10, Y13
	TESTQ AX, AX
	JZ cstore
	VADDPS (R9), Y13, Y13

cstore:
	VMOVUPS Y13, (R9)
	ADDQ $32, R9
	ADDQ $64, R14
	DECQ DX
	JNZ clastvec

	// out[q] = wsum·Σy + wend·y_end + wprev·y_end(previous step)
	VEXTRACTF64X4 $1, Z9, Y13
	VADDPD Y13, Y9, Y9
	VEXTRACTF128 $1, Y9, X13
	VADDPD X13, X9, X9
	VPERMILPD $1, X9, X13
	VADDSD X13, X9, X9
	VMULSD C_WSUM(DI), X9, X9
	VFMADD231SD C_WEND(DI), X6, X9
	VFMADD231SD C_WPREV(DI), X12, X9
	VCVTSD2SS X9, X9, X9
	VMOVSS X9, (R10)
	ADDQ $4, R10
	MOVQ C_NSEC(DI), R14
	DECQ R14
	SHLQ $7, R14
	ADDQ BX, R14
	VMOVSD X6, S_Y(R14)

cnext:
	INCQ CX
	MOVQ C_NSEC(DI), DX
	ADDQ R12, DX
	DECQ DX
	CMPQ CX, DX
	JLT citer

cdone:
	VZEROUPPER
	RET
