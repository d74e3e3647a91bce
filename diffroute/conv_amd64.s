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

// func convDenseTab512(tab *float64, nd int, e *float64, y *float64, ny int)
//
// y[n] = Σ_{d<nd} tab[d][n mod 8]·e[8⌊n/8⌋+d] for n < ny, ny a multiple of 8,
// where tab (nd rows of 8 float64, 64-byte aligned) holds the kernel's taps
// shifted by lane: tab[d][i] = rev[d−i] (0 outside the kernel), so that
// y[n] = Σ_j rev[j]·e[n+j] with each output's FMAs in ascending j, as
// convDenseAVX512 does them (the zero rows add exact zeros). Each FMA takes
// one of e's values as an embedded broadcast and the row from a register:
// no unaligned vector loads, so the FMA units bound the loop. 16 vectors
// (128 outputs) per pass over the rows keep 16 chains in flight; 8, 4 and 1
// vectors for the rest.
TEXT ·convDenseTab512(SB), NOSPLIT, $0-40
	MOVQ tab+0(FP), SI
	MOVQ nd+8(FP), CX
	MOVQ e+16(FP), DI
	MOVQ y+24(FP), DX
	MOVQ ny+32(FP), R8

tblk128:
	CMPQ R8, $128
	JLT tblk64

	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	VPXORQ Z8, Z8, Z8
	VPXORQ Z9, Z9, Z9
	VPXORQ Z10, Z10, Z10
	VPXORQ Z11, Z11, Z11
	VPXORQ Z12, Z12, Z12
	VPXORQ Z13, Z13, Z13
	VPXORQ Z14, Z14, Z14
	VPXORQ Z15, Z15, Z15
	MOVQ SI, R9
	MOVQ DI, R10
	MOVQ CX, R11

trow128:
	VMOVAPD (R9), Z16
	VFMADD231PD.BCST 0(R10), Z16, Z0
	VFMADD231PD.BCST 64(R10), Z16, Z1
	VFMADD231PD.BCST 128(R10), Z16, Z2
	VFMADD231PD.BCST 192(R10), Z16, Z3
	VFMADD231PD.BCST 256(R10), Z16, Z4
	VFMADD231PD.BCST 320(R10), Z16, Z5
	VFMADD231PD.BCST 384(R10), Z16, Z6
	VFMADD231PD.BCST 448(R10), Z16, Z7
	VFMADD231PD.BCST 512(R10), Z16, Z8
	VFMADD231PD.BCST 576(R10), Z16, Z9
	VFMADD231PD.BCST 640(R10), Z16, Z10
	VFMADD231PD.BCST 704(R10), Z16, Z11
	VFMADD231PD.BCST 768(R10), Z16, Z12
	VFMADD231PD.BCST 832(R10), Z16, Z13
	VFMADD231PD.BCST 896(R10), Z16, Z14
	VFMADD231PD.BCST 960(R10), Z16, Z15
	ADDQ $64, R9
	ADDQ $8, R10
	DECQ R11
	JNZ trow128
	VMOVUPD Z0, 0(DX)
	VMOVUPD Z1, 64(DX)
	VMOVUPD Z2, 128(DX)
	VMOVUPD Z3, 192(DX)
	VMOVUPD Z4, 256(DX)
	VMOVUPD Z5, 320(DX)
	VMOVUPD Z6, 384(DX)
	VMOVUPD Z7, 448(DX)
	VMOVUPD Z8, 512(DX)
	VMOVUPD Z9, 576(DX)
	VMOVUPD Z10, 640(DX)
	VMOVUPD Z11, 704(DX)
	VMOVUPD Z12, 768(DX)
	VMOVUPD Z13, 832(DX)
	VMOVUPD Z14, 896(DX)
	VMOVUPD Z15, 960(DX)
	ADDQ $1024, DI
	ADDQ $1024, DX
	SUBQ $128, R8
	JMP tblk128

tblk64:
	CMPQ R8, $64
	JLT tblk32
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

trow64:
	VMOVAPD (R9), Z16
	VFMADD231PD.BCST 0(R10), Z16, Z0
	VFMADD231PD.BCST 64(R10), Z16, Z1
	VFMADD231PD.BCST 128(R10), Z16, Z2
	VFMADD231PD.BCST 192(R10), Z16, Z3
	VFMADD231PD.BCST 256(R10), Z16, Z4
	VFMADD231PD.BCST 320(R10), Z16, Z5
	VFMADD231PD.BCST 384(R10), Z16, Z6
	VFMADD231PD.BCST 448(R10), Z16, Z7
	ADDQ $64, R9
	ADDQ $8, R10
	DECQ R11
	JNZ trow64
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
	JMP tblk64

tblk32:
	CMPQ R8, $32
	JLT tblk8
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	MOVQ SI, R9
	MOVQ DI, R10
	MOVQ CX, R11

trow32:
	VMOVAPD (R9), Z16
	VFMADD231PD.BCST 0(R10), Z16, Z0
	VFMADD231PD.BCST 64(R10), Z16, Z1
	VFMADD231PD.BCST 128(R10), Z16, Z2
	VFMADD231PD.BCST 192(R10), Z16, Z3
	ADDQ $64, R9
	ADDQ $8, R10
	DECQ R11
	JNZ trow32
	VMOVUPD Z0, 0(DX)
	VMOVUPD Z1, 64(DX)
	VMOVUPD Z2, 128(DX)
	VMOVUPD Z3, 192(DX)
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $32, R8
	JMP tblk32

tblk8:
	CMPQ R8, $8
	JLT tdone
	VPXORQ Z0, Z0, Z0
	MOVQ SI, R9
	MOVQ DI, R10
	MOVQ CX, R11

trow8:
	VMOVAPD (R9), Z16
	VFMADD231PD.BCST (R10), Z16, Z0
	ADDQ $64, R9
	ADDQ $8, R10
	DECQ R11
	JNZ trow8
	VMOVUPD Z0, (DX)
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $8, R8
	JMP tblk8

tdone:
	VZEROUPPER
	RET

// func fmaPeak512(n int) float64
//
// n rounds of 16 independent 512-bit FMAs on registers (no memory): the
// machine's FMA throughput, against which the convolution kernels'
// multiply-adds per second are judged (BenchmarkConvDenseKernels).
TEXT ·fmaPeak512(SB), NOSPLIT, $0-16
	MOVQ n+0(FP), CX
	VPXORQ Z0, Z0, Z0
	VMOVAPD Z0, Z1
	VMOVAPD Z0, Z2
	VMOVAPD Z0, Z3
	VMOVAPD Z0, Z4
	VMOVAPD Z0, Z5
	VMOVAPD Z0, Z6
	VMOVAPD Z0, Z7
	VMOVAPD Z0, Z8
	VMOVAPD Z0, Z9
	VMOVAPD Z0, Z10
	VMOVAPD Z0, Z11
	VMOVAPD Z0, Z12
	VMOVAPD Z0, Z13
	VMOVAPD Z0, Z14
	VMOVAPD Z0, Z15
	VPXORQ Z16, Z16, Z16
	VPXORQ Z17, Z17, Z17
	TESTQ CX, CX
	JZ peakdone

peakloop:
	VFMADD231PD Z16, Z17, Z0
	VFMADD231PD Z16, Z17, Z1
	VFMADD231PD Z16, Z17, Z2
	VFMADD231PD Z16, Z17, Z3
	VFMADD231PD Z16, Z17, Z4
	VFMADD231PD Z16, Z17, Z5
	VFMADD231PD Z16, Z17, Z6
	VFMADD231PD Z16, Z17, Z7
	VFMADD231PD Z16, Z17, Z8
	VFMADD231PD Z16, Z17, Z9
	VFMADD231PD Z16, Z17, Z10
	VFMADD231PD Z16, Z17, Z11
	VFMADD231PD Z16, Z17, Z12
	VFMADD231PD Z16, Z17, Z13
	VFMADD231PD Z16, Z17, Z14
	VFMADD231PD Z16, Z17, Z15
	DECQ CX
	JNZ peakloop

peakdone:
	VADDPD Z1, Z0, Z0
	VADDPD Z2, Z0, Z0
	VADDPD Z3, Z0, Z0
	VADDPD Z4, Z0, Z0
	VADDPD Z5, Z0, Z0
	VADDPD Z6, Z0, Z0
	VADDPD Z7, Z0, Z0
	VADDPD Z8, Z0, Z0
	VADDPD Z9, Z0, Z0
	VADDPD Z10, Z0, Z0
	VADDPD Z11, Z0, Z0
	VADDPD Z12, Z0, Z0
	VADDPD Z13, Z0, Z0
	VADDPD Z14, Z0, Z0
	VADDPD Z15, Z0, Z0
	VMOVSD X0, ret+8(FP)
	VZEROUPPER
	RET

// func convLoad512(dst *float64, inflow *float32, lat *float32, nq int, f int)
//
// dst[q·f+j] = float64(inflow[q·f+j]) + float64(lat[q]) for q < nq, j < f,
// f a multiple of 8: a convolution reach's fine inflows, as the Go loop in
// convolve makes them (each sum one float64 addition).
TEXT ·convLoad512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ inflow+8(FP), SI
	MOVQ lat+16(FP), DX
	MOVQ nq+24(FP), CX
	MOVQ f+32(FP), R8
	SHRQ $3, R8

lstep:
	TESTQ CX, CX
	JZ ldone
	VCVTSS2SD (DX), X1, X1
	VBROADCASTSD X1, Z1
	MOVQ R8, R9

lvec:
	VCVTPS2PD (SI), Z0
	VADDPD Z1, Z0, Z0
	VMOVUPD Z0, (DI)
	ADDQ $32, SI
	ADDQ $64, DI
	DECQ R9
	JNZ lvec
	ADDQ $4, DX
	DECQ CX
	JMP lstep

ldone:
	VZEROUPPER
	RET

// func convStore512(dst *float32, y *float64, n int, add bool)
//
// dst[k] = float32(y[k]), or dst[k] += float32(y[k]) (a float32 addition)
// with add, for k < n, n a multiple of 8.
TEXT ·convStore512(SB), NOSPLIT, $0-25
	MOVQ dst+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	MOVBQZX add+24(FP), AX
	SHRQ $3, CX
	TESTQ CX, CX
	JZ sdone
	TESTQ AX, AX
	JZ sstore

sadd:
	VMOVUPD (SI), Z0
	VCVTPD2PS Z0, Y0
	VADDPS (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNZ sadd
	JMP sdone

sstore:
	VMOVUPD (SI), Z0
	VCVTPD2PS Z0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $64, SI
	ADDQ $32, DI
	DECQ CX
	JNZ sstore

sdone:
	VZEROUPPER
	RET

// func convStep512(k *convStepArgs)
//
// A convolution reach's fine outflows y (float64, nq steps of f sub-steps,
// f a multiple of 8) stored into dst as float32 (added with add; no dst
// when it is nil), and each step's reported value
// out[q] = wsum·Σy + wend·y_last + wprev·y_last(previous step), as the
// section kernels report it; yl holds the last outflow before the chunk and
// after it.
TEXT ·convStep512(SB), NOSPLIT, $0-8
	MOVQ k+0(FP), DI
	MOVQ 0(DI), SI   // y
	MOVQ 8(DI), R9   // dst
	MOVQ 16(DI), R10 // out
	MOVQ 24(DI), R12 // nq
	MOVQ 32(DI), R13 // f
	SHRQ $3, R13
	MOVQ 40(DI), AX  // add
	VMOVSD 72(DI), X6 // y_last before the chunk
	XORQ CX, CX
	TESTQ R12, R12
	JZ cdone

cstep:
	VMOVAPD X6, X12 // the previous step's last outflow
	VPXORQ Z9, Z9, Z9
	MOVQ R13, DX

cvec:
	VMOVUPD (SI), Z14
	VADDPD Z14, Z9, Z9
	TESTQ R9, R9
	JZ cnext
	VCVTPD2PS Z14, Y13
	TESTQ AX, AX
	JZ cstore
	VADDPS (R9), Y13, Y13

cstore:
	VMOVUPS Y13, (R9)
	ADDQ $32, R9

cnext:
	ADDQ $64, SI
	DECQ DX
	JNZ cvec
	VMOVSD -8(SI), X6 // this step's last outflow
	VEXTRACTF64X4 $1, Z9, Y13
	VADDPD Y13, Y9, Y9
	VEXTRACTF128 $1, Y9, X13
	VADDPD X13, X9, X9
	VPERMILPD $1, X9, X13
	VADDSD X13, X9, X9
	VMULSD 48(DI), X9, X9
	VFMADD231SD 56(DI), X6, X9
	VFMADD231SD 64(DI), X12, X9
	VCVTSD2SS X9, X9, X9
	VMOVSS X9, (R10)(CX*4)
	INCQ CX
	CMPQ CX, R12
	JLT cstep
	VMOVSD X6, 72(DI)

cdone:
	VZEROUPPER
	RET

// func convTabRows512(tab *float64, pad *float64, nd int)
//
// tab[d] = pad[nd−1−d … nd+6−d] for d < nd (8 values a row, tab 64-byte
// aligned): convTab's rows, each one unaligned load and one aligned store.
TEXT ·convTabRows512(SB), NOSPLIT, $0-24
	MOVQ tab+0(FP), DI
	MOVQ pad+8(FP), SI
	MOVQ nd+16(FP), CX
	LEAQ -8(SI)(CX*8), SI
	TESTQ CX, CX
	JZ trdone

trloop:
	VMOVUPD (SI), Z0
	VMOVAPD Z0, (DI)
	SUBQ $8, SI
	ADDQ $64, DI
	DECQ CX
	JNZ trloop

trdone:
	VZEROUPPER
	RET
