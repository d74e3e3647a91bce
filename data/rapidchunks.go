package data

import (
	"bytes"
	"runtime"
	"sync"

	"github.com/diffroute-go/route/internal/ids"
)

// The RAPID text files of a global network hold millions of lines: they are
// parsed in chunks on every core. A chunk parser only says whether its lines
// are all good; at the first doubt (a bad line, a blank line, a repeated id)
// the whole file is parsed again by the sequential parser, whose first error
// is the one reported. Good files, the usual case, are parsed once in
// parallel; bad ones cost a second, sequential pass.

// parChunkMin is the smallest file cut into chunks (a variable so that tests
// exercise chunking on small inputs).
var parChunkMin = 1 << 20

// textChunk is a piece of a file that starts at the start of a line: its
// lines are data lines first, first+1, … (0-based) when the file is good.
type textChunk struct {
	b     []byte
	first int  // 0-based index of its first line
	lines int  // lines it holds (a last line without '\n' included)
	last  bool // the file's last chunk (it may end with blank lines)
}

// splitChunks cuts b at line ends into about one chunk per core.
func splitChunks(b []byte) []textChunk {
	w := runtime.GOMAXPROCS(0)
	if len(b) < parChunkMin || w < 2 {
		w = 1
	}
	w = min(w*2, max(1, len(b)/max(1, parChunkMin/4))) // two per core evens out the load
	var cs []textChunk
	for start := 0; start < len(b); {
		end := len(b)
		if rest := len(cs) + 1; rest < w {
			end = start + (len(b)-start)/(w-len(cs))
			if i := bytes.IndexByte(b[end:], '\n'); i >= 0 {
				end += i + 1
			} else {
				end = len(b)
			}
		}
		cs = append(cs, textChunk{b: b[start:end]})
		start = end
	}
	if len(cs) == 0 {
		return nil
	}
	counts := make([]int, len(cs))
	runChunks(cs, func(k int, c textChunk) bool {
		counts[k] = bytes.Count(c.b, []byte{'\n'})
		if n := len(c.b); n > 0 && c.b[n-1] != '\n' {
			counts[k]++
		}
		return true
	})
	first := 0
	for k := range cs {
		cs[k].first, cs[k].lines = first, counts[k]
		first += counts[k]
	}
	cs[len(cs)-1].last = true
	return cs
}

// runChunks calls fn on every chunk, in parallel, and reports whether every
// call returned true.
func runChunks(cs []textChunk, fn func(k int, c textChunk) bool) bool {
	if len(cs) == 1 {
		return fn(0, cs[0])
	}
	ok := make([]bool, len(cs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for k, c := range cs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			ok[k] = fn(k, c)
			<-sem
		}()
	}
	wg.Wait()
	for _, o := range ok {
		if !o {
			return false
		}
	}
	return true
}

// chunkLines calls fn with the 0-based index of each line of c and its
// content trimmed, as eachLine would, and reports false at the first line
// fn refuses or at a blank line the file cannot have at that place. It
// returns the number of data lines.
func chunkLines(c textChunk, fn func(i int, ln []byte) bool) (int, bool) {
	n := 0
	blank := false
	ok := eachLineFrom(c.b, "", c.first+1, func(line int, ln []byte) error {
		if !fn(line-1, ln) {
			return errChunk
		}
		n++
		return nil
	}, &blank) == nil
	// Blank lines may only end the file.
	if !ok || blank && !c.last || !c.last && n != c.lines {
		return n, false
	}
	return n, true
}

// errChunk stops a chunk parser; the file is then parsed sequentially.
var errChunk = &ParseError{Msg: "chunk"}

// lastCount is the number of data lines of a good file: those of every
// chunk but the last, plus the last's.
func lastCount(cs []textChunk, lastLines int) int {
	return cs[len(cs)-1].first + lastLines
}

// parseConnectFast parses rapid_connect.csv in chunks; ok is false when the
// file has anything the sequential parser would refuse (or the fast path
// cannot be sure it would not).
func parseConnectFast(b []byte) (*Connect, bool) {
	cs := splitChunks(b)
	if cs == nil {
		return nil, false
	}
	total := cs[len(cs)-1].first + cs[len(cs)-1].lines
	c := &Connect{IDs: make([]int64, total), Down: make([]int64, total), upEnd: make([]int32, total)}
	ups := make([][]int64, len(cs))
	ncols := make([]int, len(cs))
	counts := make([]int, len(cs))
	if !runChunks(cs, func(k int, ch textChunk) bool {
		var up []int64
		ncol := -1
		var vals [64]int64
		n, ok := chunkLines(ch, func(i int, ln []byte) bool {
			rec, nf := record(ln)
			if nf < 3 || nf > len(vals) || ncol >= 0 && nf != ncol {
				return false
			}
			ncol = nf
			for j := 0; j < nf; j++ {
				var fld []byte
				fld, rec = nextField(rec)
				v, ok := plainID(fld)
				if !ok {
					return false
				}
				vals[j] = v
			}
			id, down, nup := vals[0], vals[1], vals[2]
			if id <= 0 || down == id || nup < 0 || nup > int64(nf-3) {
				return false
			}
			for j, u := range vals[3:nf] {
				if u != 0 && (int64(j) >= nup || u < 0) || u == 0 && int64(j) < nup {
					return false
				}
			}
			c.IDs[i], c.Down[i] = id, down
			up = append(up, vals[3:3+nup]...)
			c.upEnd[i] = int32(len(up))
			return true
		})
		ups[k], ncols[k], counts[k] = up, ncol, n
		return ok
	}) {
		return nil, false
	}
	n := lastCount(cs, counts[len(cs)-1])
	if n == 0 {
		return nil, false
	}
	for k := range ncols {
		if ncols[k] != ncols[0] && counts[k] > 0 {
			return nil, false
		}
	}
	c.IDs, c.Down, c.upEnd = c.IDs[:n], c.Down[:n], c.upEnd[:n]
	// One array of upstream ids: each chunk's ends shifted by the ids of
	// the chunks before it.
	m := 0
	offs := make([]int, len(cs))
	for k, u := range ups {
		offs[k] = m
		m += len(u)
	}
	c.up = make([]int64, m)
	runChunks(cs, func(k int, ch textChunk) bool {
		copy(c.up[offs[k]:], ups[k])
		if o := int32(offs[k]); o != 0 {
			e := c.upEnd[ch.first:min(n, ch.first+counts[k])]
			for i := range e {
				e[i] += o
			}
		}
		return true
	})
	c.index = ids.NewIndex(c.IDs)
	if _, _, dup := c.index.Repeat(); dup {
		return nil, false
	}
	return c, true
}

// plainID parses a field of plain decimal digits (an optional sign); ok is
// false for anything else, which the sequential parser then judges.
func plainID(b []byte) (int64, bool) {
	d := b
	neg := false
	if len(d) > 0 && (d[0] == '-' || d[0] == '+') {
		neg = d[0] == '-'
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// parseBasinFast parses riv_bas_id.csv in chunks (one positive id per
// line; repeats are the caller's to find); ok is false at anything the
// sequential parser must judge.
func parseBasinFast(b []byte) ([]int64, bool) {
	ids, ok := parseColumnFast(b, func(f []byte) (int64, bool) {
		id, ok := plainID(f)
		return id, ok && id > 0
	})
	return ids, ok && len(ids) > 0
}

// parseValuesFast parses a one-value-per-line file in chunks; ok is false
// at anything the sequential parser must judge.
func parseValuesFast(b []byte) ([]float64, bool) {
	return parseColumnFast(b, func(f []byte) (float64, bool) {
		v, err := parseFloatBytes(f)
		return v, err == nil
	})
}

// parseColumnFast parses a file of one field per line in chunks on every
// core; ok is false at anything the sequential parser must judge.
func parseColumnFast[T any](b []byte, parse func(field []byte) (T, bool)) ([]T, bool) {
	cs := splitChunks(b)
	if cs == nil {
		return nil, false
	}
	out := make([]T, cs[len(cs)-1].first+cs[len(cs)-1].lines)
	var lastN int
	if !runChunks(cs, func(k int, ch textChunk) bool {
		n, ok := chunkLines(ch, func(i int, ln []byte) bool {
			rec, nf := record(ln)
			if nf != 1 {
				return false
			}
			v, ok := parse(bytes.TrimSpace(rec))
			out[i] = v
			return ok
		})
		if ch.last {
			lastN = n
		}
		return ok
	}) {
		return nil, false
	}
	return out[:lastCount(cs, lastN)], true
}
