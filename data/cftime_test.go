package data

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	for s, want := range map[string]string{
		"2003-01-21T03:00:00Z":         "2003-01-21T03:00:00Z",
		"2003-01-21 03:00:00":          "2003-01-21T03:00:00Z",
		"2003-1-21 3:0:0.5 +05:30":     "2003-01-20T21:30:00.5Z",
		"2003-01-21":                   "2003-01-21T00:00:00Z",
		"2000-02-29 24:00":             "2000-03-01T00:00:00Z",
		"0001-01-01T01:00:00+01:00":    "0001-01-01T00:00:00Z",
		"9999-12-31T23:59:59.5 GMT":    "9999-12-31T23:59:59.5Z",
		"2003-01-21T03:00:00.25+00:00": "2003-01-21T03:00:00.25Z",
	} {
		got, err := ParseTime(s)
		if err != nil || FormatTime(got) != want {
			t.Errorf("%q: %v, %v; want %s", s, FormatTime(got), err, want)
		}
	}
	for _, s := range []string{
		"0000-01-01T00:00:00Z",                               // year 0
		"0001-01-01T00:00:00+01:00",                          // year 0 in UTC
		"9999-12-31T23:00:00-05:00",                          // year 10000 in UTC
		"2000-02-30", "2001-02-29 00:00", "2000-02-31 24:00", // no such day
		"2000-02-29 24:30", "2000-01-01 24:00:01", // past the end of the day
		"2000-13-01", "2000-01-01 25:00", "-2000-01-01", "2000-01-01 00:00:00 +2400", "",
	} {
		if got, err := ParseTime(s); err == nil {
			t.Errorf("%q accepted as %v", s, got)
		}
	}
}

func TestParseCFUnits(t *testing.T) {
	c, err := ParseCFUnits("hours since 1900-1-1 0:0:0")
	if err != nil || c.Unit != time.Hour || !c.Epoch.Equal(time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v, %v", c, err)
	}
	if u := c.Units(); u != "hours since 1900-01-01 00:00:00+00:00" {
		t.Fatalf("units %q", u)
	}
	if _, err := c.Time(1e300); err == nil {
		t.Error("1e300 hours accepted")
	}
	if got, err := c.Time(-24); err != nil || FormatTime(got) != "1899-12-31T00:00:00Z" {
		t.Errorf("-24 hours: %v, %v", got, err)
	}
	e, _ := ParseCFUnits("days since 9990-01-01")
	if got, err := e.Time(4000); err == nil { // year 10000
		t.Errorf("4000 days after 9990: %v", got)
	}
	for _, s := range []string{"months since 2000-01-01", "days after 2000-01-01", "days since 0000-01-01"} {
		if _, err := ParseCFUnits(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
