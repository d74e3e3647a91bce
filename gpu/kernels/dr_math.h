// dr_math.h — exp and sincos in double for device code that may call no
// library (the PTX is built without libdevice, see dr_device.h), and that
// the emulator compiles unchanged. Range reduction plus Taylor polynomials:
// about 1e-16 relative for exp, 1e-16 absolute for sin/cos of |x| ≲ 1e5
// (the phases of path spectra stay far below that).
#ifndef DR_MATH_H
#define DR_MATH_H
#include "dr_device.h"

static __device__ __forceinline__ double dr_pow2i(long long k) {
	// 2^k for −1022 ≤ k ≤ 1023, from the exponent bits.
	return __builtin_bit_cast(double, (unsigned long long)(k + 1023) << 52);
}

static __device__ __forceinline__ long long dr_round(double x) {
	return (long long)(x >= 0 ? x + 0.5 : x - 0.5);
}

// dr_exp is e^x; 0 below −745 (underflow), +inf above 709.8.
static __device__ __forceinline__ double dr_exp(double x) {
	if (!(x > -745.2)) {
		return x != x ? x : 0.0; // NaN stays NaN
	}
	if (x > 709.78) {
		return __builtin_bit_cast(double, 0x7ff0000000000000ULL);
	}
	const double ln2hi = 6.93147180369123816490e-01, ln2lo = 1.90821492927058770002e-10;
	const long long k = dr_round(x * 1.44269504088896338700e+00);
	const double r = (x - (double)k * ln2hi) - (double)k * ln2lo; // |r| ≤ 0.35
	// e^r by Horner over 1/n!, n ≤ 13.
	double p = 1.0 / 6227020800.0;
	p = p * r + 1.0 / 479001600.0;
	p = p * r + 1.0 / 39916800.0;
	p = p * r + 1.0 / 3628800.0;
	p = p * r + 1.0 / 362880.0;
	p = p * r + 1.0 / 40320.0;
	p = p * r + 1.0 / 5040.0;
	p = p * r + 1.0 / 720.0;
	p = p * r + 1.0 / 120.0;
	p = p * r + 1.0 / 24.0;
	p = p * r + 1.0 / 6.0;
	p = p * r + 0.5;
	p = p * r + 1.0;
	p = p * r + 1.0;
	if (k < -1022) { // subnormal result: scale in two steps
		return p * dr_pow2i(k + 600) * dr_pow2i(-600);
	}
	if (k > 1023) {
		return p * dr_pow2i(k - 1) * 2.0;
	}
	return p * dr_pow2i(k);
}

// dr_sincos sets *s = sin x, *c = cos x.
static __device__ __forceinline__ void dr_sincos(double x, double* s, double* c) {
	// x = q·π/2 + r, |r| ≤ π/4, with π/2 split in three parts (Cody–Waite).
	const double pio2a = 1.57079632673412561417e+00, pio2b = 6.07710050630396597660e-11,
	             pio2c = 2.02226624871116645580e-21;
	const long long q = dr_round(x * 6.36619772367581382433e-01);
	const double qd = (double)q;
	const double r = ((x - qd * pio2a) - qd * pio2b) - qd * pio2c;
	const double r2 = r * r;
	// sin r = r·Σ (−1)^n r^{2n}/(2n+1)!, cos r = Σ (−1)^n r^{2n}/(2n)!, n ≤ 8.
	double ps = -1.0 / 355687428096000.0;
	ps = ps * r2 + 1.0 / 1307674368000.0;
	ps = ps * r2 - 1.0 / 6227020800.0;
	ps = ps * r2 + 1.0 / 39916800.0;
	ps = ps * r2 - 1.0 / 362880.0;
	ps = ps * r2 + 1.0 / 5040.0;
	ps = ps * r2 - 1.0 / 120.0;
	ps = ps * r2 + 1.0 / 6.0;
	const double sr = r - r * r2 * ps;
	double pc = 1.0 / 20922789888000.0;
	pc = pc * r2 - 1.0 / 87178291200.0;
	pc = pc * r2 + 1.0 / 479001600.0;
	pc = pc * r2 - 1.0 / 3628800.0;
	pc = pc * r2 + 1.0 / 40320.0;
	pc = pc * r2 - 1.0 / 720.0;
	pc = pc * r2 + 1.0 / 24.0;
	pc = pc * r2 - 0.5;
	const double cr = 1.0 + r2 * pc;
	switch (q & 3) {
	case 0:
		*s = sr, *c = cr;
		break;
	case 1:
		*s = cr, *c = -sr;
		break;
	case 2:
		*s = -sr, *c = -cr;
		break;
	default:
		*s = -cr, *c = sr;
		break;
	}
}
#endif
