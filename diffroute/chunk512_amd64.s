#include "textflag.h"

// HSUM stores the sum of the eight lanes of Z into the argument block at
// dst (Z's low halves Y and X are clobbered, and X12).
#define HSUM(Z, Y, X, dst) \
	VEXTRACTF64X4 $1, Z, Y12; \
	VADDPD Y12, Y, Y; \
	VEXTRACTF128 $1, Y, X12; \
	VADDPD X12, X, X; \
	VPERMILPD $1, X, X12; \
	VADDSD X12, X, X; \
	VMOVSD X, dst(DI)

// GATHER16 loads the float32 at base + 4·Z21[j] for the 16 lanes j (each
// lane's value of a step, from a series in time order) as float64: lanes
// 0–7 into LO, 8–15 into HI (YLO, YHI their low halves).
#define GATHER16(base, LO, HI, YLO, YHI) \
	KXNORW K3, K3, K3; \
	VGATHERDPS (base)(Z21*4), K3, LO; \
	VEXTRACTF32X8 $1, LO, YHI; \
	VCVTPS2PD YHI, HI; \
	VCVTPS2PD YLO, LO

// LANEUP stores into the argument block at dst the 16 values of the chunked
// row at base before each lane's first sub-step: the row's last sub-step
// (at BX) one lane up, the value at first(DI) in lane 0 (Z20 zero, K1 lane
// 0; Z10–Z15 clobbered).
#define LANEUP(base, first, dst) \
	VMOVUPD (base)(BX*8), Z10; \
	VMOVUPD 64(base)(BX*8), Z11; \
	VALIGNQ $7, Z10, Z11, Z13; \
	VALIGNQ $7, Z20, Z10, Z12; \
	VBROADCASTSD first(DI), Z15; \
	VBLENDMPD Z15, Z12, K1, Z12; \
	VMOVUPD Z12, dst(DI); \
	VMOVUPD Z13, (dst+64)(DI)

// Field offsets of chunkKernel (chunk512_amd64.go).
#define C_U 0
#define C_U2 8
#define C_USUM 16
#define C_Y 24
#define C_C 32
#define C_L 40
#define C_F 48
#define C_B0 56
#define C_B1 64
#define C_A 72
#define C_UP0 80
#define C_Y0 88
#define C_AL 96
#define C_CARRY 104
#define C_OUT 232
#define C_WSUM 240
#define C_WEND 248
#define C_WPREV 256
#define C_LAT32 264
#define C_OUT32 272
#define C_S 280
#define C_KC 288

// 0, 1, …, 15: times the steps a lane, the offsets of each lane's step in
// a block's per-step series.
DATA chunkIota<>+0(SB)/4, $0
DATA chunkIota<>+4(SB)/4, $1
DATA chunkIota<>+8(SB)/4, $2
DATA chunkIota<>+12(SB)/4, $3
DATA chunkIota<>+16(SB)/4, $4
DATA chunkIota<>+20(SB)/4, $5
DATA chunkIota<>+24(SB)/4, $6
DATA chunkIota<>+28(SB)/4, $7
DATA chunkIota<>+32(SB)/4, $8
DATA chunkIota<>+36(SB)/4, $9
DATA chunkIota<>+40(SB)/4, $10
DATA chunkIota<>+44(SB)/4, $11
DATA chunkIota<>+48(SB)/4, $12
DATA chunkIota<>+52(SB)/4, $13
DATA chunkIota<>+56(SB)/4, $14
DATA chunkIota<>+60(SB)/4, $15
GLOBL chunkIota<>(SB), RODATA, $64

// func chunkForwardAVX512(k *chunkKernel)
//
// A section's recursion y[n] = a·y[n−1] + b0·u[n] +
// b1·u[n−1] + c over a block cut into 16 chunks of L sub-steps, chunk j in
// lane j (sub-step j·L + t at [16t + j]): each lane runs its own chunk's
// recursion from zero, two vectors a sub-step, so that the only
// loop-carried chains are the two lanes' halves' FMAs. The chunks' true
// starts are added in a second pass. c holds c per step of each lane
// ([s][16]); u[n−1] of a chunk's first sub-step is the chunk before's last
// (up0 before the first). Where u2 is not nil the inflow is u + u2, stored
// into usum unless that is nil.
TEXT ·chunkForwardAVX512(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ C_U(DI), SI
	MOVQ C_U2(DI), AX
	MOVQ C_USUM(DI), R11
	MOVQ C_Y(DI), R9
	MOVQ C_C(DI), R8
	MOVQ C_L(DI), R12
	MOVQ C_F(DI), R13
	VBROADCASTSD C_B0(DI), Z0
	VBROADCASTSD C_B1(DI), Z1
	VBROADCASTSD C_A(DI), Z2
	VPXORQ Z20, Z20, Z20
	VPXORQ Z6, Z6, Z6 // y, lanes 0–7
	VPXORQ Z7, Z7, Z7 // y, lanes 8–15
	MOVQ $1, R14
	KMOVW R14, K1 // lane 0
	// Each lane's step offset (j·S) in the per-step series, and where the
	// float32 runoff is read from (lat32, gathered: c is not used then).
	VPBROADCASTD C_S(DI), Z21
	VPMULLD chunkIota<>(SB), Z21, Z21
	VBROADCASTSD C_KC(DI), Z19
	MOVQ C_LAT32(DI), R10
	// u[n−1] of each chunk's first sub-step: the last sub-step's inflow,
	// one lane up, up0 in lane 0.
	MOVQ R12, BX
	DECQ BX
	SHLQ $4, BX
	VMOVUPD (SI)(BX*8), Z10
	VMOVUPD 64(SI)(BX*8), Z11
	TESTQ AX, AX
	JZ cprev
	VADDPD (AX)(BX*8), Z10, Z10
	VADDPD 64(AX)(BX*8), Z11, Z11

cprev:
	VALIGNQ $7, Z10, Z11, Z23
	VALIGNQ $7, Z20, Z10, Z22
	VBROADCASTSD C_UP0(DI), Z15
	VBLENDMPD Z15, Z22, K1, Z22
	XORQ BX, BX // 16t
	XORQ CX, CX // c of the step, [s][16]

cstep:
	TESTQ R10, R10
	JZ cload
	GATHER16(R10, Z16, Z17, Y16, Y17) // lane j: the runoff of its step
	VMULPD Z19, Z16, Z16 // c = (b0+b1)·l
	VMULPD Z19, Z17, Z17
	ADDQ $4, R10
	JMP chave

cload:
	VMOVUPD (R8)(CX*8), Z16
	VMOVUPD 64(R8)(CX*8), Z17

chave:
	MOVQ R13, DX

csub:
	VMOVUPD (SI)(BX*8), Z10
	VMOVUPD 64(SI)(BX*8), Z11
	TESTQ AX, AX
	JZ cone
	VADDPD (AX)(BX*8), Z10, Z10
	VADDPD 64(AX)(BX*8), Z11, Z11
	TESTQ R11, R11
	JZ cone
	VMOVUPD Z10, (R11)(BX*8)
	VMOVUPD Z11, 64(R11)(BX*8)

cone:
	VMOVAPD Z16, Z12
	VFMADD231PD Z10, Z0, Z12
	VFMADD231PD Z22, Z1, Z12 // g = c + b0·u + b1·u[−1]
	VMOVAPD Z17, Z13
	VFMADD231PD Z11, Z0, Z13
	VFMADD231PD Z23, Z1, Z13
	VFMADD213PD Z12, Z2, Z6 // y = a·y + g
	VFMADD213PD Z13, Z2, Z7
	VMOVUPD Z6, (R9)(BX*8)
	VMOVUPD Z7, 64(R9)(BX*8)
	VMOVAPD Z10, Z22
	VMOVAPD Z11, Z23
	ADDQ $16, BX
	DECQ DX
	JNZ csub
	ADDQ $16, CX
	MOVQ R12, DX
	SHLQ $4, DX
	CMPQ BX, DX
	JLT cstep

	// Each chunk's true start: carry[j] = the chunk before's local end +
	// a^L·carry[j−1], carry[0] = y0.
	MOVQ R12, BX
	DECQ BX
	SHLQ $4, BX
	LEAQ (R9)(BX*8), R8 // the last sub-step's local outflows
	VMOVSD C_Y0(DI), X10
	VMOVSD C_AL(DI), X11
	XORQ CX, CX

ccarry:
	VMOVSD X10, C_CARRY(DI)(CX*8)
	VMOVSD (R8)(CX*8), X12
	VFMADD231SD X11, X10, X12 // local end + a^L·carry
	VMOVAPD X12, X10
	INCQ CX
	CMPQ CX, $16
	JLT ccarry

	// The second pass: y[16t + j] += a^(t+1)·carry[j].
	VMOVUPD C_CARRY(DI), Z8
	VMOVUPD (C_CARRY+64)(DI), Z9
	MOVQ C_OUT(DI), R10
	MOVQ C_OUT32(DI), R14
	MOVQ R10, AX
	ORQ R14, AX
	JNZ reports
	// Two sub-steps an iteration, so that the powers' chain (a² a step) is
	// not the loop's.
	VBROADCASTSD C_A(DI), Z4 // a^(t+1) for even t
	VMULPD Z4, Z4, Z3 // a²
	VMOVAPD Z3, Z5 // a^(t+2) for the odd t after it
	XORQ BX, BX
	MOVQ R12, DX
	SHRQ $1, DX
	JZ ftail

fpair:
	VMOVUPD (R9)(BX*8), Z10
	VMOVUPD 64(R9)(BX*8), Z11
	VMOVUPD 128(R9)(BX*8), Z12
	VMOVUPD 192(R9)(BX*8), Z13
	VFMADD231PD Z8, Z4, Z10
	VFMADD231PD Z9, Z4, Z11
	VFMADD231PD Z8, Z5, Z12
	VFMADD231PD Z9, Z5, Z13
	VMOVUPD Z10, (R9)(BX*8)
	VMOVUPD Z11, 64(R9)(BX*8)
	VMOVUPD Z12, 128(R9)(BX*8)
	VMOVUPD Z13, 192(R9)(BX*8)
	VMULPD Z3, Z4, Z4
	VMULPD Z3, Z5, Z5
	ADDQ $32, BX
	DECQ DX
	JNZ fpair

ftail:
	TESTQ $1, R12
	JZ fdone
	VMOVUPD (R9)(BX*8), Z10
	VMOVUPD 64(R9)(BX*8), Z11
	VFMADD231PD Z8, Z4, Z10
	VFMADD231PD Z9, Z4, Z11
	VMOVUPD Z10, (R9)(BX*8)
	VMOVUPD Z11, 64(R9)(BX*8)

fdone:
	VZEROUPPER
	RET

reports:
	// With each step's reported value per lane into out ([s][16]):
	// wsum·Σy + wend·y at its end + wprev·y at the end of the step before
	// (carry for a chunk's first step).
	VBROADCASTSD C_A(DI), Z2
	VMOVAPD Z2, Z4 // a^(t+1)
	VMOVAPD Z8, Z14 // y at the end of the step before
	VMOVAPD Z9, Z15
	VBROADCASTSD C_WSUM(DI), Z16
	VBROADCASTSD C_WEND(DI), Z17
	VBROADCASTSD C_WPREV(DI), Z18
	MOVQ C_F(DI), R13
	MOVQ R12, R11
	SHLQ $4, R11 // 16L
	XORQ BX, BX
	XORQ CX, CX

rstep:
	VPXORQ Z12, Z12, Z12
	VPXORQ Z13, Z13, Z13
	MOVQ R13, DX

rsub:
	VMOVUPD (R9)(BX*8), Z10
	VMOVUPD 64(R9)(BX*8), Z11
	VFMADD231PD Z8, Z4, Z10
	VFMADD231PD Z9, Z4, Z11
	VMOVUPD Z10, (R9)(BX*8)
	VMOVUPD Z11, 64(R9)(BX*8)
	VADDPD Z10, Z12, Z12
	VADDPD Z11, Z13, Z13
	VMULPD Z2, Z4, Z4
	ADDQ $16, BX
	DECQ DX
	JNZ rsub
	VMULPD Z16, Z12, Z12
	VFMADD231PD Z17, Z10, Z12
	VFMADD231PD Z18, Z14, Z12
	VMULPD Z16, Z13, Z13
	VFMADD231PD Z17, Z11, Z13
	VFMADD231PD Z18, Z15, Z13
	TESTQ R14, R14
	JZ rstore64
	VCVTPD2PS Z12, Y24
	VCVTPD2PS Z13, Y25
	VINSERTF32X8 $1, Y25, Z24, Z24
	KXNORW K3, K3, K3
	VSCATTERDPS Z24, K3, (R14)(Z21*4) // lane j's step into its place in time order
	ADDQ $4, R14
	JMP rnext

rstore64:
	VMOVUPD Z12, (R10)(CX*8)
	VMOVUPD Z13, 64(R10)(CX*8)

rnext:
	VMOVAPD Z10, Z14
	VMOVAPD Z11, Z15
	ADDQ $16, CX
	CMPQ BX, R11
	JLT rstep
	VZEROUPPER
	RET

// Field offsets of chunkAdjKernel (chunk512_amd64.go).
#define J_UBD 0
#define J_LAM 8
#define J_CS 16
#define J_ES 24
#define J_Y 32
#define J_U 40
#define J_L 48
#define J_F 56
#define J_B0 64
#define J_B1 72
#define J_A 80
#define J_SUML 88
#define J_FIRSTL 96
#define J_DU 104
#define J_DUP 112
#define J_DY 120
#define J_LAM0 128
#define J_S 136
#define J_AL 144
#define J_LAMAFTER 152
#define J_Y0 160
#define J_UP0 168
#define J_DV 176
#define J_YP 304
#define J_UP 432
#define J_GY32 560
#define J_W0 568
#define J_DX32 576
#define J_LAT32 584
#define J_KC 592
#define J_DL 600

// func chunkAdjointAVX512(k *chunkAdjKernel)
//
// The adjoint of chunkForwardAVX512, backwards. The first pass runs each
// lane's λ[n] = ȳ[n] + a·λ[n+1] from zero after its chunk, ȳ = ubd + cs
// (+ es on a step's last sub-step), into lam. The second adds each chunk's
// true λ after it, a^(L−t)·d[j], and computes ∂L/∂u[n] = b0·λ[n] +
// b1·λ[n+1] over y, the sums Σλ·u[n], Σλ·u[n−1], Σλ·y[n−1], and per step
// of each lane Σλ and λ at its first sub-step.
TEXT ·chunkAdjointAVX512(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ J_UBD(DI), SI
	MOVQ J_LAM(DI), R9
	MOVQ J_CS(DI), R8
	MOVQ J_ES(DI), R10
	MOVQ J_L(DI), R12
	MOVQ J_F(DI), R13
	VBROADCASTSD J_A(DI), Z2
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	MOVQ R12, BX
	DECQ BX
	SHLQ $4, BX // 16t of the last sub-step
	MOVQ J_S(DI), CX // steps a chunk
	// Where gy32 is set, cs = w0·∂L/∂y gathered per step of each lane from
	// the float32 series in time order, and es = 0.
	VPBROADCASTD J_S(DI), Z21
	VPMULLD chunkIota<>(SB), Z21, Z21
	VBROADCASTSD J_W0(DI), Z19
	MOVQ J_GY32(DI), AX
	LEAQ -4(AX)(CX*4), AX // the last step's
	DECQ CX
	SHLQ $4, CX // [s][16] of the last step

jstep:
	CMPQ J_GY32(DI), $0
	JEQ jload
	GATHER16(AX, Z16, Z17, Y16, Y17)
	VMULPD Z19, Z16, Z16
	VMULPD Z19, Z17, Z17
	VMOVAPD Z16, Z14
	VMOVAPD Z17, Z15
	SUBQ $4, AX
	JMP jhave

jload:
	VMOVUPD (R8)(CX*8), Z16
	VMOVUPD 64(R8)(CX*8), Z17
	VADDPD (R10)(CX*8), Z16, Z14 // the step's last sub-step: + es
	VADDPD 64(R10)(CX*8), Z17, Z15

jhave:
	MOVQ R13, DX

jsub:
	VADDPD (SI)(BX*8), Z14, Z10
	VADDPD 64(SI)(BX*8), Z15, Z11
	VMOVAPD Z16, Z14
	VMOVAPD Z17, Z15
	VFMADD213PD Z10, Z2, Z6 // λ = a·λ + ȳ
	VFMADD213PD Z11, Z2, Z7
	VMOVUPD Z6, (R9)(BX*8)
	VMOVUPD Z7, 64(R9)(BX*8)
	SUBQ $16, BX
	DECQ DX
	JNZ jsub
	SUBQ $16, CX
	JGE jstep

	// λ after each chunk: d[15] = λ after the block, d[j] = the local λ of
	// chunk j+1 at its first sub-step + a^L·d[j+1].
	VMOVSD J_LAMAFTER(DI), X10
	VMOVSD J_AL(DI), X11
	MOVQ $15, CX

jcarry:
	VMOVSD X10, J_DV(DI)(CX*8)
	TESTQ CX, CX
	JZ jcdone
	VMOVSD (R9)(CX*8), X12
	VFMADD231SD X11, X10, X12
	VMOVAPD X12, X10
	DECQ CX
	JMP jcarry

jcdone:
	// y and u before each chunk's first sub-step: the chunk before's last,
	// y0 and up0 before the first (y is overwritten below).
	MOVQ $1, R14
	KMOVW R14, K1
	VPXORQ Z20, Z20, Z20
	MOVQ J_L(DI), BX
	DECQ BX
	SHLQ $4, BX
	MOVQ J_Y(DI), R9
	LANEUP(R9, J_Y0, J_YP)
	MOVQ J_U(DI), SI
	LANEUP(SI, J_UP0, J_UP)

	// The second pass.
	MOVQ J_LAM(DI), R8
	MOVQ J_Y(DI), R9
	MOVQ J_U(DI), SI
	MOVQ J_SUML(DI), R10
	MOVQ J_FIRSTL(DI), R11
	MOVQ J_L(DI), R12
	MOVQ J_F(DI), R13
	LEAQ J_DV(DI), R14
	VBROADCASTSD J_B0(DI), Z0
	VBROADCASTSD J_B1(DI), Z1
	VBROADCASTSD J_A(DI), Z2
	VMOVAPD Z2, Z3 // a^(L−t)
	VMOVUPD (R14), Z8
	VMOVUPD 64(R14), Z9
	VMOVAPD Z8, Z4 // λ[n+1]
	VMOVAPD Z9, Z5
	VPXORQ Z24, Z24, Z24
	VPXORQ Z25, Z25, Z25
	VPXORQ Z26, Z26, Z26
	VPXORQ Z27, Z27, Z27
	VPXORQ Z28, Z28, Z28
	VPXORQ Z29, Z29, Z29
	VPXORQ Z30, Z30, Z30
	VPXORQ Z31, Z31, Z31
	MOVQ R12, BX
	DECQ BX
	SHLQ $4, BX
	MOVQ J_S(DI), CX
	// Where dx32 is set, each step's ∂L/∂runoff = kc·Σλ goes into it in
	// time order, and Σ runoff·Σλ (lat32, gathered) into dl.
	VBROADCASTSD J_KC(DI), Z20
	VPXORQ Z22, Z22, Z22
	VPXORQ Z23, Z23, Z23
	MOVQ J_DX32(DI), R12
	LEAQ -4(R12)(CX*4), R12
	MOVQ J_LAT32(DI), AX
	LEAQ -4(AX)(CX*4), AX
	DECQ CX
	SHLQ $4, CX

kstep:
	MOVQ R13, DX

ksub:
	VMOVUPD (R8)(BX*8), Z10
	VMOVUPD 64(R8)(BX*8), Z11
	VFMADD231PD Z8, Z3, Z10 // λ
	VFMADD231PD Z9, Z3, Z11
	VMULPD Z4, Z1, Z12
	VMULPD Z5, Z1, Z13
	VFMADD231PD Z10, Z0, Z12 // ∂L/∂u = b0·λ + b1·λ[n+1]
	VFMADD231PD Z11, Z0, Z13
	VFMADD231PD (SI)(BX*8), Z10, Z24 // Σλ·u[n]
	VFMADD231PD 64(SI)(BX*8), Z11, Z25
	TESTQ BX, BX
	JZ kfirst
	VFMADD231PD -128(SI)(BX*8), Z10, Z26 // Σλ·u[n−1]
	VFMADD231PD -64(SI)(BX*8), Z11, Z27
	VFMADD231PD -128(R9)(BX*8), Z10, Z28 // Σλ·y[n−1]
	VFMADD231PD -64(R9)(BX*8), Z11, Z29
	JMP khave

kfirst:
	LEAQ J_UP(DI), R14
	VFMADD231PD (R14), Z10, Z26
	VFMADD231PD 64(R14), Z11, Z27
	LEAQ J_YP(DI), R14
	VFMADD231PD (R14), Z10, Z28
	VFMADD231PD 64(R14), Z11, Z29

khave:
	VMOVUPD Z12, (R9)(BX*8)
	VMOVUPD Z13, 64(R9)(BX*8)
	VADDPD Z10, Z30, Z30
	VADDPD Z11, Z31, Z31
	VMOVAPD Z10, Z4
	VMOVAPD Z11, Z5
	VMULPD Z2, Z3, Z3
	SUBQ $16, BX
	DECQ DX
	JNZ ksub
	// The step's first sub-step is done: its sums and λ.
	VMOVUPD Z30, (R10)(CX*8)
	VMOVUPD Z31, 64(R10)(CX*8)
	VMOVUPD Z4, (R11)(CX*8)
	VMOVUPD Z5, 64(R11)(CX*8)
	CMPQ J_DX32(DI), $0
	JEQ knodx
	VMULPD Z20, Z30, Z12
	VMULPD Z20, Z31, Z13
	VCVTPD2PS Z12, Y6
	VCVTPD2PS Z13, Y7
	VINSERTF32X8 $1, Y7, Z6, Z6
	KXNORW K3, K3, K3
	VSCATTERDPS Z6, K3, (R12)(Z21*4)
	GATHER16(AX, Z6, Z7, Y6, Y7)
	VFMADD231PD Z30, Z6, Z22 // Σ runoff·Σλ
	VFMADD231PD Z31, Z7, Z23
	SUBQ $4, R12
	SUBQ $4, AX

knodx:
	VPXORQ Z30, Z30, Z30
	VPXORQ Z31, Z31, Z31
	SUBQ $16, CX
	JGE kstep

	VADDPD Z23, Z22, Z10
	HSUM(Z10, Y10, X10, J_DL)

	VMOVSD X4, J_LAM0(DI)
	VADDPD Z25, Z24, Z10
	VADDPD Z27, Z26, Z11
	VADDPD Z29, Z28, Z13
	HSUM(Z10, Y10, X10, J_DU)
	HSUM(Z11, Y11, X11, J_DUP)
	HSUM(Z13, Y13, X13, J_DY)
	VZEROUPPER
	RET
