package data

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// CFTime is a decoded CF time units string "<unit> since <date>".
type CFTime struct {
	Unit  time.Duration // length of one unit (second, minute, hour or day)
	Epoch time.Time     // reference date, UTC
}

// ParseCFUnits parses a CF time units attribute such as
// "seconds since 1970-01-01 00:00:00+00:00" or "days since 2000-01-01".
// Months and years are rejected (their length varies).
func ParseCFUnits(units string) (CFTime, error) {
	s := strings.TrimSpace(units)
	unit, rest, ok := strings.Cut(s, " since ")
	if !ok {
		return CFTime{}, fmt.Errorf("time units %q are not \"<unit> since <date>\"", units)
	}
	var d time.Duration
	switch strings.ToLower(strings.TrimSpace(unit)) {
	case "seconds", "second", "secs", "sec", "s":
		d = time.Second
	case "minutes", "minute", "mins", "min":
		d = time.Minute
	case "hours", "hour", "hrs", "hr", "h":
		d = time.Hour
	case "days", "day", "d":
		d = 24 * time.Hour
	case "milliseconds", "millisecond", "msecs", "msec", "ms":
		d = time.Millisecond
	case "microseconds", "microsecond", "us":
		d = time.Microsecond
	case "nanoseconds", "nanosecond", "ns":
		d = time.Nanosecond
	default:
		return CFTime{}, fmt.Errorf("time units %q: unsupported unit %q", units, unit)
	}
	t, err := ParseTime(rest)
	if err != nil {
		return CFTime{}, fmt.Errorf("time units %q: %v", units, err)
	}
	return CFTime{Unit: d, Epoch: t}, nil
}

// Time returns the instant v units after the epoch, rounded to the
// nanosecond. Instants outside years 1-9999 (UTC), which FormatTime labels
// could not be parsed back from, are an error.
func (c CFTime) Time(v float64) (time.Time, error) {
	ns := v * float64(c.Unit)
	if math.IsNaN(ns) || math.Abs(ns) > math.MaxInt64/2 {
		return time.Time{}, fmt.Errorf("time value %v out of range", v)
	}
	t := c.Epoch.Add(time.Duration(math.Round(ns))).UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("time value %v is outside years 1-9999", v)
	}
	return t, nil
}

// Units returns the CF units string "<unit> since YYYY-MM-DD hh:mm:ss+00:00".
func (c CFTime) Units() string {
	name := "seconds"
	switch c.Unit {
	case time.Minute:
		name = "minutes"
	case time.Hour:
		name = "hours"
	case 24 * time.Hour:
		name = "days"
	case time.Millisecond:
		name = "milliseconds"
	case time.Microsecond:
		name = "microseconds"
	case time.Nanosecond:
		name = "nanoseconds"
	}
	return name + " since " + c.Epoch.UTC().Format("2006-01-02 15:04:05") + "+00:00"
}

// ParseTime parses a date-time label as found in CF units, CSV time columns
// and tensor labels: RFC 3339 ("2003-01-21T03:00:00Z"), "2003-01-21 03:00:00",
// "2003-1-21 3:0:0.5 +05:30", "2003-01-21" and the like. A missing zone means
// UTC; "Z", "UTC", "GMT" and numeric offsets (±hh, ±hhmm, ±hh:mm) are
// understood. "24:00" is the end of the day. The instant must fall within
// years 1-9999 in UTC, the range FormatTime labels round-trip.
func ParseTime(s string) (time.Time, error) {
	in := s
	s = strings.TrimSpace(s)
	bad := func() (time.Time, error) { return time.Time{}, fmt.Errorf("cannot parse time %q", in) }
	// inRange keeps instants within years 1-9999 in UTC, the range that
	// FormatTime, CFTime.Units and this parser round-trip (an offset can push
	// 0001-01-01 or 9999-12-31 out of it).
	inRange := func(t time.Time) (time.Time, error) {
		if u := t.UTC(); u.Year() < 1 || u.Year() > 9999 {
			return bad()
		}
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(t)
	}
	// Date part.
	end := strings.IndexAny(s, "T ")
	datePart, rest := s, ""
	if end >= 0 {
		datePart, rest = s[:end], strings.TrimSpace(s[end+1:])
	}
	neg := strings.HasPrefix(datePart, "-")
	if neg {
		return bad()
	}
	ymd := strings.Split(datePart, "-")
	if len(ymd) != 3 {
		return bad()
	}
	y, err1 := strconv.Atoi(ymd[0])
	mo, err2 := strconv.Atoi(ymd[1])
	d, err3 := strconv.Atoi(ymd[2])
	if err1 != nil || err2 != nil || err3 != nil || mo < 1 || mo > 12 || d < 1 || d > 31 || y > 9999 {
		return bad()
	}
	var h, mi, sec, nsec int
	loc := time.UTC
	if rest != "" {
		// Zone: trailing Z/UTC/GMT or a sign after the clock.
		zone := ""
		for _, z := range []string{"UTC", "GMT", "Z"} {
			if strings.HasSuffix(strings.ToUpper(rest), z) {
				rest = strings.TrimSpace(rest[:len(rest)-len(z)])
				break
			}
		}
		if i := strings.LastIndexAny(rest, "+-"); i >= 0 {
			zone = strings.TrimSpace(rest[i:])
			rest = strings.TrimSpace(rest[:i])
		}
		if rest != "" {
			hms := strings.Split(rest, ":")
			if len(hms) > 3 {
				return bad()
			}
			var err error
			if h, err = strconv.Atoi(hms[0]); err != nil || h < 0 || h > 24 {
				return bad()
			}
			if len(hms) > 1 {
				if mi, err = strconv.Atoi(hms[1]); err != nil || mi < 0 || mi > 59 {
					return bad()
				}
			}
			if len(hms) > 2 {
				fs, err := strconv.ParseFloat(hms[2], 64)
				if err != nil || fs < 0 || fs >= 61 || strings.ContainsAny(hms[2], "eEnNiI") {
					return bad()
				}
				sec = int(fs)
				nsec = int(math.Round((fs - float64(sec)) * 1e9))
			}
		}
		if zone != "" {
			sign := 1
			if zone[0] == '-' {
				sign = -1
			}
			z := strings.ReplaceAll(zone[1:], ":", "")
			var zh, zm int
			var err error
			switch len(z) {
			case 1, 2:
				zh, err = strconv.Atoi(z)
			case 3, 4:
				zh, err = strconv.Atoi(z[:len(z)-2])
				if err == nil {
					zm, err = strconv.Atoi(z[len(z)-2:])
				}
			default:
				return bad()
			}
			if err != nil || zh > 23 || zm > 59 || zh < 0 || zm < 0 {
				return bad()
			}
			loc = time.FixedZone("", sign*(zh*3600+zm*60))
		}
	}
	if time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC).Day() != d {
		return bad() // e.g. February 30
	}
	if h == 24 && (mi != 0 || sec != 0 || nsec != 0) {
		return bad() // 24:00 is the end of the day; 24:30 is not a time
	}
	return inRange(time.Date(y, time.Month(mo), d, h, mi, sec, nsec, loc))
}

// FormatTime formats an instant as an RFC 3339 label in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// uniformStep returns the common spacing of instants, or 0 when there are
// fewer than two or the spacing varies.
func uniformStep(ts []time.Time) time.Duration {
	if len(ts) < 2 {
		return 0
	}
	d := ts[1].Sub(ts[0])
	if d <= 0 {
		return 0
	}
	for i := 2; i < len(ts); i++ {
		if ts[i].Sub(ts[i-1]) != d {
			return 0
		}
	}
	return d
}

// parseTimes parses every label; ok is false if any fails.
func parseTimes(labels []string) ([]time.Time, bool) {
	if len(labels) == 0 {
		return nil, false
	}
	ts := make([]time.Time, len(labels))
	for i, s := range labels {
		t, err := ParseTime(s)
		if err != nil {
			return nil, false
		}
		ts[i] = t
	}
	return ts, true
}

// StepOf returns the uniform spacing of time labels, or 0 when they are not
// all parseable by ParseTime or not uniformly spaced.
func StepOf(labels []string) time.Duration {
	ts, ok := parseTimes(labels)
	if !ok {
		return 0
	}
	return uniformStep(ts)
}

// Times returns the time coordinate of x as instants, parsing its labels
// (ParseTime), or an error naming the first label that is not a time.
func Times(x *diffroute.DataTensor) ([]time.Time, error) {
	if len(x.Times) != x.T {
		return nil, fmt.Errorf("data: %d time labels for %d steps", len(x.Times), x.T)
	}
	ts := make([]time.Time, len(x.Times))
	for i, s := range x.Times {
		t, err := ParseTime(s)
		if err != nil {
			return nil, fmt.Errorf("data: time step %d: %w", i, err)
		}
		ts[i] = t
	}
	return ts, nil
}

// SetTimes labels the steps of x with instants (FormatTime) and sets its
// step from their spacing (0 when not uniform); Times reads back the same
// instants, and so does a netCDF file written from x (CF units).
func SetTimes(x *diffroute.DataTensor, ts []time.Time) error {
	if len(ts) != x.T {
		return fmt.Errorf("data: %d times for %d steps", len(ts), x.T)
	}
	x.Times = make([]string, len(ts))
	for i, t := range ts {
		x.Times[i] = FormatTime(t)
	}
	x.Step = uniformStep(ts)
	return nil
}
