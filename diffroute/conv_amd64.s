#include "textflag.h"

// func convDenseAVX2(rev *float64, nt int, e *float64, y *float64, ny int)
//
// y[n] = Σ_{j<nt} rev[j]·e[n+j] for n < ny, nt ≥ 1. Every output is one
// accumulator updated by one FMA per tap in ascending j, whichever block
// (32, 4 or 1 outputs) computes it, so an output's value does not depend on
// where the chunk starts. 32 outputs per pass over the taps keep eight
// independent accumulator chains in flight.
TEXT ·convDenseAVX2(SB), NOSPLIT, $0-40
	MOVQ rev+0(FP), SI
	MOVQ nt+8(FP), CX
	MOVQ e+16(FP), DI
	MOVQ y+24(FP), DX
	MOVQ ny+32(FP), R8

block32:
	CMPQ R8, $32
	JLT block4
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	MOVQ SI, R9
	MOVQ DI, R10
	MOVQ CX, R11

tap32:
	VBROADCASTSD (R9), Y8
	VFMADD231PD 0(R10), Y8, Y0
	VFMADD231PD 32(R10), Y8, Y1
	VFMADD231PD 64(R10), Y8, Y2
	VFMADD231PD 96(R10), Y8, Y3
	VFMADD231PD 128(R10), Y8, Y4
	VFMADD231PD 160(R10), Y8, Y5
	VFMADD231PD 192(R10), Y8, Y6
	VFMADD231PD 224(R10), Y8, Y7
	ADDQ $8, R9
	ADDQ $8, R10
	DECQ R11
	JNZ tap32
	VMOVUPD Y0, 0(DX)
	VMOVUPD Y1, 32(DX)
	VMOVUPD Y2, 64(DX)
	VMOVUPD Y3, 96(DX)
	VMOVUPD Y4, 128(DX)
	VMOVUPD Y5, 160(DX)
	VMOVUPD Y6, 192(DX)
	VMOVUPD Y7, 224(DX)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $32, R8
	JMP block32

block4:
	CMPQ R8, $4
	JLT block1
	VXORPD Y0, Y0, Y0
	MOVQ SI, R9
	MOVQ DI, R10
	MOVQ CX, R11

tap4:
	VBROADCASTSD (R9), Y8
	VFMADD231PD (R10), Y8, Y0
	ADDQ $8, R9
	ADDQ $8, R10
	DECQ R11
	JNZ tap4
	VMOVUPD Y0, (DX)
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $4, R8
	JMP block4

block1:
	TESTQ R8, R8
	JZ done
	VXORPD X0, X0, X0
	MOVQ SI, R9
	MOVQ DI, R10
	MOVQ CX, R11

tap1:
	VMOVSD (R9), X8
	VFMADD231SD (R10), X8, X0
	ADDQ $8, R9
	ADDQ $8, R10
	DECQ R11
	JNZ tap1
	VMOVSD X0, (DX)
	ADDQ $8, DI
	ADDQ $8, DX
	DECQ R8
	JMP block1

done:
	VZEROUPPER
	RET

// func convDenseAVX512(rev *float64, nt int, e *float64, y *float64, ny int)
//
// convDenseAVX2's 32-output block on 512-bit registers: 64 outputs per pass
// over the taps, ny a multiple of 64, the same FMA per output and tap.
TEXT ·convDenseAVX512(SB), NOSPLIT, $0-40
	MOVQ rev+0(FP), SI
	MOVQ nt+8(FP), CX
	MOVQ e+16(FP), DI
	MOVQ y+24(FP), DX
	MOVQ ny+32(FP), R8

block64:
	CMPQ R8, $64
	JLT done512
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	MOVQ SI, R9
	MOVQ DI, R10
	MOVQ CX, R11

tap64:
	VBROADCASTSD (R9), Z8
	VFMADD231PD 0(R10), Z8, Z0
	VFMADD231PD 64(R10), Z8, Z1
	VFMADD231PD 128(R10), Z8, Z2
	VFMADD231PD 192(R10), Z8, Z3
	VFMADD231PD 256(R10), Z8, Z4
	VFMADD231PD 320(R10), Z8, Z5
	VFMADD231PD 384(R10), Z8, Z6
	VFMADD231PD 448(R10), Z8, Z7
	ADDQ $8, R9
	ADDQ $8, R10
	DECQ R11
	JNZ tap64
	VMOVUPD Z0, 0(DX)
	VMOVUPD Z1, 64(DX)
	VMOVUPD Z2, 128(DX)
	VMOVUPD Z3, 192(DX)
	VMOVUPD Z4, 256(DX)
	VMOVUPD Z5, 320(DX)
	VMOVUPD Z6, 384(DX)
	VMOVUPD Z7, 448(DX)
	ADDQ $512, DI
	ADDQ $512, DX
	SUBQ $64, R8
	JMP block64

done512:
	VZEROUPPER
	RET
