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
#define C_TILEB 80
#define C_ADD 88
#define C_WSUM 96
#define C_WEND 104
#define C_WPREV 112
#define C_TILE 120
#define C_NTILES 128

// Offsets in one section's block of 64 float64 (cascadeSecBlock).
#define S_B0 0
#define S_A8 32
#define S_Y 40
#define S_PW 64
#define S_C1 128
#define S_C2 192
#define S_C3 256

// LOADSEC loads the section block at R14: b0, a⁸, [a … a⁸], the three scan
// rounds' coefficients and the section's last output (the carry).
#define LOADSEC \
	VBROADCASTSD S_B0(R14), Z0; \
	VMOVUPD S_C1(R14), Z1; \
	VMOVUPD S_C2(R14), Z2; \
	VMOVUPD S_C3(R14), Z3; \
	VBROADCASTSD S_A8(R14), Z4; \
	VMOVUPD S_PW(R14), Z5; \
	VBROADCASTSD S_Y(R14), Z6

// SCAN turns g (Z10, eight sub-steps) into the section's outflows
// y[j] = a^(j+1)·y[−1] + Σ_{i≤j} a^(j−i)·g[i] and advances the carry
// y[−1] (Z6) by eight sub-steps: a⁸·y[−1] + s[7], off y's chain. The
// prefix sum s is built over blocks of 2, 4 and 8 lanes, each round adding
// a block's last value times powers of a to the next block (a permute within
// 128-bit lanes, one within 256-bit halves, one across: cheaper than three
// whole-vector shifts).
#define SCAN \
	VPERMILPD $0, Z10, Z13; \
	VFMADD231PD Z13, Z1, Z10; \
	VPERMPD $0x55, Z10, Z13; \
	VFMADD231PD Z13, Z2, Z10; \
	VPERMPD Z10, Z15, Z13; \
	VFMADD231PD Z13, Z3, Z10; \
	VPERMPD Z10, Z8, Z11; \
	VFMADD231PD Z6, Z5, Z10; \
	VFMADD213PD Z11, Z4, Z6

// func cascadeAVX512(k *casc8Kernel)
//
// A cascade of sections without an inflow-lag term (B1 = 0: Nash
// reservoirs) in one pass, eight sub-steps a vector as sectionAVX512, the
// sections pipelined by tiles of a few runoff steps: iteration it runs the
// first section on tile it, section k on tile it−k, so each section's input
// (the previous section's outflow over that tile, in a ring of tile buffers
// in L1) was made an iteration earlier and the sections' chains overlap
// instead of queueing behind each other; a section's set-up is paid once a
// tile. The last section adds (or stores) float32 outflows into dst and
// writes each step's reported value into out.
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
	VPXORQ Z7, Z7, Z7 // zeros shifted in
	MOVQ $7, AX
	VPBROADCASTQ AX, Z8 // index of the last lane
	MOVQ $3, AX
	VPBROADCASTQ AX, Z15 // lane 3, the first half's last
	XORQ CX, CX         // iteration
	TESTQ R12, R12
	JZ cdone

citer:
	// First section on tile it: g = b0·u + b0·l.
	CMPQ CX, C_NTILES(DI)
	JGE cmid
	MOVQ BX, R14
	LOADSEC
	MOVQ CX, AX
	IMULQ C_TILE(DI), AX // first step of the tile
	MOVQ R12, DX
	SUBQ AX, DX          // steps left
	MOVQ C_TILE(DI), AX
	CMPQ DX, AX
	CMOVQLT DX, AX       // steps in the tile
	MOVQ CX, R14
	ANDQ C_MASK(DI), R14
	IMULQ C_TILEB(DI), R14
	ADDQ R11, R14

cfirststep:
	VXORPD X9, X9, X9
	VCVTSS2SD (R8), X9, X9
	VMULSD S_B0(BX), X9, X9
	VBROADCASTSD X9, Z14
	ADDQ $4, R8
	MOVQ R13, DX

cfirst:
	VCVTPS2PD (SI), Z10
	VFMADD213PD Z14, Z0, Z10
	SCAN
	VMOVUPD Z10, (R14)
	ADDQ $32, SI
	ADDQ $64, R14
	DECQ DX
	JNZ cfirst
	DECQ AX
	JNZ cfirststep
	VMOVSD X6, S_Y(BX)

cmid:
	// Middle sections k = 1 … nsec−2 on tile it−k: g = b0·x.
	MOVQ $1, AX

cmidloop:
	MOVQ C_NSEC(DI), DX
	DECQ DX
	CMPQ AX, DX
	JGE clast
	MOVQ CX, DX
	SUBQ AX, DX
	JLT cmidnext
	CMPQ DX, C_NTILES(DI)
	JGE cmidnext
	MOVQ AX, R14
	SHLQ $9, R14
	ADDQ BX, R14
	LOADSEC
	MOVQ DX, R14
	ANDQ C_MASK(DI), R14
	IMULQ C_TILEB(DI), R14
	ADDQ R11, R14
	// vectors in the tile: nv · min(tile, nq − first step)
	IMULQ C_TILE(DI), DX
	NEGQ DX
	ADDQ R12, DX
	CMPQ DX, C_TILE(DI)
	JLT cmidshort
	MOVQ C_TILE(DI), DX

cmidshort:
	IMULQ R13, DX

cmidvec:
	VMULPD (R14), Z0, Z10
	SCAN
	VMOVUPD Z10, (R14)
	ADDQ $64, R14
	DECQ DX
	JNZ cmidvec
	MOVQ AX, R14
	SHLQ $9, R14
	ADDQ BX, R14
	VMOVSD X6, S_Y(R14)

cmidnext:
	INCQ AX
	JMP cmidloop

clast:
	// Last section (k = nsec−1) on tile it−k, into dst and out.
	MOVQ C_NSEC(DI), AX
	DECQ AX
	MOVQ CX, DX
	SUBQ AX, DX
	JLT cnext
	CMPQ DX, C_NTILES(DI)
	JGE cnext
	MOVQ AX, R14
	SHLQ $9, R14
	ADDQ BX, R14
	LOADSEC
	MOVQ DX, R14
	ANDQ C_MASK(DI), R14
	IMULQ C_TILEB(DI), R14
	ADDQ R11, R14
	IMULQ C_TILE(DI), DX
	NEGQ DX
	ADDQ R12, DX
	MOVQ C_TILE(DI), AX
	CMPQ DX, AX
	CMOVQLT DX, AX // steps in the tile

claststep:
	VMOVAPD X6, X12   // the previous step's last outflow
	VXORPD X9, X9, X9 // the step's sum
	MOVQ R13, DX
	CMPQ C_ADD(DI), $0
	JEQ clastset

clastadd:
	VMULPD (R14), Z0, Z10
	SCAN
	VADDPD Z10, Z9, Z9
	VCVTPD2PS Z10, Y13
	VADDPS (R9), Y13, Y13
	VMOVUPS Y13, (R9)
	ADDQ $32, R9
	ADDQ $64, R14
	DECQ DX
	JNZ clastadd
	JMP clastout

clastset:
	VMULPD (R14), Z0, Z10
	SCAN
	VADDPD Z10, Z9, Z9
	VCVTPD2PS Z10, Y13
	VMOVUPS Y13, (R9)
	ADDQ $32, R9
	ADDQ $64, R14
	DECQ DX
	JNZ clastset

clastout:
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
	DECQ AX
	JNZ claststep
	MOVQ C_NSEC(DI), R14
	DECQ R14
	SHLQ $9, R14
	ADDQ BX, R14
	VMOVSD X6, S_Y(R14)

cnext:
	INCQ CX
	MOVQ C_NSEC(DI), DX
	ADDQ C_NTILES(DI), DX
	DECQ DX
	CMPQ CX, DX
	JLT citer

cdone:
	VZEROUPPER
	RET
