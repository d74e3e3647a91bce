package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/diffroute-go/route/calibrate"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
)

// readMapFile reads and checks a map.json written by calibrate.
func readMapFile(path, irf string) (*mapFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("route: --map-from %s: %v", path, pathErrReason(err))
	}
	var m mapFile
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: not a map written by diffroute calibrate: %v", path, err)
	}
	switch {
	case m.Kind != "loglinear" && m.Kind != "mlp" && m.Kind != "group":
		return nil, fmt.Errorf("%s: kind %q: want loglinear, mlp or group", path, m.Kind)
	case m.IRF != irf:
		return nil, usageError{fmt.Sprintf("route: --map-from %s was learned for IRF %s; route with --irf %s", path, m.IRF, m.IRF)}
	case len(m.Params) == 0 || len(m.Bounds) != len(m.Params):
		return nil, fmt.Errorf("%s: %d parameters with %d bounds", path, len(m.Params), len(m.Bounds))
	case !(m.StepSeconds > 0):
		return nil, fmt.Errorf("%s: step_seconds %v must be positive", path, m.StepSeconds)
	case m.Kind != "group" && m.Standardization == nil:
		return nil, fmt.Errorf("%s: a %s map needs its standardization", path, m.Kind)
	case m.Kind == "mlp" && m.Hidden < 1:
		return nil, fmt.Errorf("%s: an mlp map needs hidden ≥ 1", path)
	case m.Kind == "group" && len(m.Groups) == 0:
		return nil, fmt.Errorf("%s: a group map needs its groups", path)
	}
	for _, v := range m.Z {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: z holds %v", path, v)
		}
	}
	return &m, nil
}

// params applies the map to a network: per-reach values of its parameters
// in runoff steps, from the reach attributes (loglinear, mlp) or groups
// (group) in attrPath, a CSV rivid,<column>,… as calibrate --map takes it.
func (m *mapFile) params(path, attrPath string, net *diffroute.Network, step time.Duration) (diffroute.Params, error) {
	if math.Abs(step.Seconds()-m.StepSeconds) > 1e-9*m.StepSeconds {
		return nil, usageError{fmt.Sprintf("route: --map-from %s was learned on a runoff step of %g s, this runoff's is %g s; route runoff of the same step", path, m.StepSeconds, step.Seconds())}
	}
	spec := make([]string, len(m.Params))
	for k, name := range m.Params {
		spec[k] = name + "=" + m.Bounds[k]
	}
	tb, err := calibrate.ParseBounds(strings.Join(spec, ","), m.Params, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	tr := make([]calibrate.Transform, len(m.Params))
	for k, name := range m.Params {
		tr[k] = tb[name]
	}
	P := len(m.Params)
	var mp calibrate.Map
	switch m.Kind {
	case "loglinear", "mlp":
		a, err := readAttributes(attrPath, net)
		if err != nil {
			return nil, err
		}
		x, err := m.Standardization.Apply(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", attrPath, strings.TrimPrefix(err.Error(), "calibrate: "))
		}
		if m.Kind == "loglinear" {
			mp = &calibrate.Linear{P: P, Attr: x}
		} else {
			mp = &calibrate.MLP{P: P, H: m.Hidden, Attr: x}
		}
	case "group":
		group, labels, err := readGroups(attrPath, net)
		if err != nil {
			return nil, err
		}
		// This basin's group indices → the map's.
		idx := make([]int, len(labels))
		for k, l := range labels {
			if idx[k] = slices.Index(m.Groups, l); idx[k] < 0 {
				return nil, fmt.Errorf("%s: group %q has no value in %s (its groups: %s)", attrPath, l, path, strings.Join(m.Groups, ", "))
			}
		}
		for i, g := range group {
			group[i] = idx[g]
		}
		mp = &calibrate.Grouped{P: P, Groups: len(m.Groups), Group: group}
	}
	if n := mp.NumVars(); n != len(m.Z) {
		return nil, fmt.Errorf("%s: z holds %d values, the %s map over these attributes needs %d", path, len(m.Z), m.Kind, n)
	}
	sp, err := calibrate.NewSpace(m.Params, tr, mp, net.Len(), nil)
	if err != nil {
		return nil, err
	}
	return sp.Params(m.Z), nil
}

// applyLearnedMap resolves route's --map-from and --attributes (or
// --params-from a calibrate folder holding map.json, with --attributes):
// the learned map gives this basin's parameters from its reach attributes.
func applyLearnedMap(cfg *pipeline.Config, rf *routeFlags, rapidDir, mapFrom, attrs string) error {
	if attrs != "" && mapFrom == "" && rf.paramsFrom != "" {
		// --params-from a calibrate folder with another basin's attributes:
		// apply its learned map.
		mapFrom = filepath.Join(rf.paramsFrom, "map.json")
		if !fileExists(mapFrom) {
			return usageError{fmt.Sprintf("route: --attributes with --params-from %s needs the learned map %s (calibrate --map loglinear, mlp or group writes it)", rf.paramsFrom, mapFrom)}
		}
		rf.paramsFrom, cfg.ParamsFrom = "", ""
	}
	switch {
	case attrs != "" && mapFrom == "":
		return usageError{"route: --attributes goes with --map-from (or --params-from a folder holding map.json)"}
	case mapFrom != "" && rf.paramsFrom != "":
		return usageError{"route: --map-from and --params-from both give the parameters: use one"}
	case mapFrom != "":
		if attrs == "" {
			attrs = filepath.Join(rapidDir, "attributes.csv")
			if !fileExists(attrs) {
				return usageError{fmt.Sprintf("route: --map-from needs this basin's reach attributes: --attributes FILE (no attributes.csv in %s)", rapidDir)}
			}
		}
		for _, in := range []struct{ flag, path string }{{"map-from", mapFrom}, {"attributes", attrs}} {
			if err := checkInputFile("route", in.flag, in.path); err != nil {
				return err
			}
		}
		m, err := readMapFile(mapFrom, rf.irf)
		if err != nil {
			return err
		}
		path, attrPath := mapFrom, attrs
		cfg.ParamsMap = func(net *diffroute.Network, step time.Duration) (diffroute.Params, error) {
			return m.params(path, attrPath, net, step)
		}
	}
	return nil
}
