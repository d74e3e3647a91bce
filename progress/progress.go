// Package progress is the vocabulary long operations use to report how far
// they are: downloads (package download), the clusters of a staged run
// (diffroute.StagedRouter), the time chunks of a streamed one (package
// pipeline). It draws nothing: viz.NewProgress draws a text bar on a
// terminal or an HTML bar in a notebook cell.
package progress

// Reporter receives the progress of long operations. Start begins a task of
// total units (≤ 0 when unknown); Update gives the units done so far (a
// running total, not an increment); Done ends the task, successfully when
// err is nil. A Reporter may run several tasks one after another; the
// Reporters of this module are safe for concurrent use.
type Reporter interface {
	Start(name string, total int64)
	Update(done int64)
	Done(err error)
}

// Quiet is a Reporter that shows nothing.
var Quiet Reporter = quiet{}

type quiet struct{}

func (quiet) Start(string, int64) {}
func (quiet) Update(int64)        {}
func (quiet) Done(error)          {}

// OrQuiet returns r, or Quiet when r is nil.
func OrQuiet(r Reporter) Reporter {
	if r == nil {
		return Quiet
	}
	return r
}
