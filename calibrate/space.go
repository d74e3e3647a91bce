package calibrate

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Transform maps an unconstrained value u to a parameter value θ, so that
// optimizers search an unbounded space while θ stays where routing is
// valid.
type Transform interface {
	// Param returns θ(u) and dθ/du.
	Param(u float64) (theta, dtheta float64)
	// Free returns u with θ(u) = theta, or an error when theta is outside
	// the range.
	Free(theta float64) (float64, error)
	String() string
}

// Sigmoid is θ = Min + (Max − Min)·σ(u), DiffHydro's bounded transform.
type Sigmoid struct{ Min, Max float64 }

// Param implements Transform.
func (s Sigmoid) Param(u float64) (float64, float64) {
	// σ(u) written to stay exact for large |u|.
	var sg float64
	if u >= 0 {
		sg = 1 / (1 + math.Exp(-u))
	} else {
		e := math.Exp(u)
		sg = e / (1 + e)
	}
	w := s.Max - s.Min
	return s.Min + w*sg, w * sg * (1 - sg)
}

// Free implements Transform. Values at or beyond a bound are pulled inside
// by 1e-6 of the range (the sigmoid never reaches its bounds).
func (s Sigmoid) Free(theta float64) (float64, error) {
	if math.IsNaN(theta) || theta < s.Min || theta > s.Max {
		return 0, fmt.Errorf("value %v outside the bounds [%v, %v]", theta, s.Min, s.Max)
	}
	p := (theta - s.Min) / (s.Max - s.Min)
	p = min(max(p, 1e-6), 1-1e-6)
	return math.Log(p / (1 - p)), nil
}

func (s Sigmoid) String() string { return fmt.Sprintf("%g:%g", s.Min, s.Max) }

// Exp is θ = Min + exp(u): positive (above Min) and unbounded, the log
// space of hydrologists' regionalisation.
type Exp struct{ Min float64 }

// Param implements Transform.
func (e Exp) Param(u float64) (float64, float64) {
	v := math.Exp(u)
	return e.Min + v, v
}

// Free implements Transform.
func (e Exp) Free(theta float64) (float64, error) {
	if !(theta > e.Min) || math.IsInf(theta, 0) {
		return 0, fmt.Errorf("value %v must be finite and above %v", theta, e.Min)
	}
	return math.Log(theta - e.Min), nil
}

func (e Exp) String() string { return fmt.Sprintf("%g:inf", e.Min) }

// ParseBounds reads "name=min:max,…" (max "inf" for a log transform above
// min) into transforms. scale multiplies the bounds of the named parameters
// (e.g. seconds to runoff steps for k); names must be among allowed.
func ParseBounds(s string, allowed []string, scale map[string]float64) (map[string]Transform, error) {
	out := map[string]Transform{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		name, rng, ok := strings.Cut(strings.TrimSpace(item), "=")
		lo, hi, ok2 := strings.Cut(rng, ":")
		if !ok || !ok2 || name == "" {
			return nil, fmt.Errorf("bounds %q: want name=min:max", item)
		}
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return nil, fmt.Errorf("bounds %q: no parameter %q (calibrated: %s)", item, name, strings.Join(allowed, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("bounds: %s given twice", name)
		}
		a, err := strconv.ParseFloat(strings.TrimSpace(lo), 64)
		if err != nil || math.IsNaN(a) || math.IsInf(a, 0) {
			return nil, fmt.Errorf("bounds %q: min %q is not a finite number", item, lo)
		}
		sc := 1.0
		if v, ok := scale[name]; ok {
			sc = v
		}
		if strings.EqualFold(strings.TrimSpace(hi), "inf") {
			out[name] = Exp{Min: a * sc}
			continue
		}
		b, err := strconv.ParseFloat(strings.TrimSpace(hi), 64)
		if err != nil || math.IsNaN(b) || math.IsInf(b, 0) {
			return nil, fmt.Errorf("bounds %q: max %q is not a finite number (or inf)", item, hi)
		}
		if !(a < b) {
			return nil, fmt.Errorf("bounds %q: min %v must be below max %v", item, a, b)
		}
		out[name] = Sigmoid{Min: a * sc, Max: b * sc}
	}
	return out, nil
}
