#include "textflag.h"

// func corrPairAVX512(acc *float64, gy *float32, taps *float64, n, nk int)
//
// acc[t] += Σ_{k<nK, t+k<T} K[k]·g[t+k] for t < T, eight outputs a vector
// and, where every tap stays inside g, four vectors at a time (four
// independent FMA chains); taps are added in increasing k, as the scalar
// loop adds them. Lanes past T are masked: nothing outside acc[:T] or
// g[:T] is read or written.
TEXT ·corrPairAVX512(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), DI
	MOVQ gy+8(FP), SI
	MOVQ taps+16(FP), DX
	MOVQ n+24(FP), R8
	MOVQ nk+32(FP), R9
	XORQ AX, AX // t0
	TESTQ R9, R9
	JZ cdone

	// Four vectors at a time while t0 + 31 + nK − 1 < T.
	MOVQ R8, R10
	SUBQ R9, R10
	SUBQ $31, R10 // t0 ≤ R10 − 1 … t0 < R10 + 1: run while t0 ≤ T − nK − 31
c4:
	CMPQ AX, R10
	JG c1
	VMOVUPD (DI)(AX*8), Z0
	VMOVUPD 64(DI)(AX*8), Z1
	VMOVUPD 128(DI)(AX*8), Z2
	VMOVUPD 192(DI)(AX*8), Z3
	LEAQ (SI)(AX*4), BX // &g[t0]
	XORQ CX, CX         // k
c4k:
	VCVTPS2PD (BX)(CX*4), Z4
	VCVTPS2PD 32(BX)(CX*4), Z5
	VCVTPS2PD 64(BX)(CX*4), Z6
	VCVTPS2PD 96(BX)(CX*4), Z7
	VBROADCASTSD (DX)(CX*8), Z8
	VFMADD231PD Z4, Z8, Z0
	VFMADD231PD Z5, Z8, Z1
	VFMADD231PD Z6, Z8, Z2
	VFMADD231PD Z7, Z8, Z3
	INCQ CX
	CMPQ CX, R9
	JLT c4k
	VMOVUPD Z0, (DI)(AX*8)
	VMOVUPD Z1, 64(DI)(AX*8)
	VMOVUPD Z2, 128(DI)(AX*8)
	VMOVUPD Z3, 192(DI)(AX*8)
	ADDQ $32, AX
	JMP c4

	// One vector at a time, masked to the lanes inside acc and g.
c1:
	CMPQ AX, R8
	JGE cdone
	MOVQ R8, R11
	SUBQ AX, R11 // outputs left
	MOVQ $0xff, R12
	CMPQ R11, $8
	JGE c1full
	MOVQ $1, R12
	MOVQ R11, CX
	SHLQ CX, R12
	DECQ R12
c1full:
	KMOVW R12, K1
	VMOVUPD.Z (DI)(AX*8), K1, Z0
	LEAQ (SI)(AX*4), BX
	XORQ CX, CX
c1k:
	// lanes j with t0 + j + k < T: min(8, T − t0 − k) of them
	MOVQ R11, R13
	SUBQ CX, R13
	JLE c1store
	MOVQ $0xff, R12
	CMPQ R13, $8
	JGE c1mask
	MOVQ CX, R14
	MOVQ R13, CX
	MOVQ $1, R12
	SHLQ CX, R12
	DECQ R12
	MOVQ R14, CX
c1mask:
	KMOVW R12, K2
	VCVTPS2PD.Z (BX)(CX*4), K2, Z4
	VBROADCASTSD (DX)(CX*8), Z8
	VFMADD231PD Z4, Z8, Z0
	INCQ CX
	CMPQ CX, R9
	JLT c1k
c1store:
	VMOVUPD Z0, K1, (DI)(AX*8)
	ADDQ $8, AX
	JMP c1

cdone:
	VZEROUPPER
	RET
