package viz

import (
	"fmt"
	"html"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/diffroute"
)

// How much of a tensor the summaries show: head and tail rows (reaches) and
// columns (time steps).
const (
	headRows, tailRows = 5, 3
	headCols, tailCols = 4, 3
)

// keep returns the indices shown out of n, with -1 marking the gap.
func keep(n, head, tail int) []int {
	if n <= head+tail+1 {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, 0, head+tail+1)
	for i := 0; i < head; i++ {
		out = append(out, i)
	}
	out = append(out, -1)
	for i := n - tail; i < n; i++ {
		out = append(out, i)
	}
	return out
}

func fmtValue(v float32) string {
	return strconv.FormatFloat(float64(v), 'g', 5, 32)
}

func tensorTitle(x *diffroute.DataTensor) string {
	s := fmt.Sprintf("DataTensor (batch=%d, spatial=%d, time=%d)", x.B, x.N, x.T)
	if x.Units != "" {
		s += " " + x.Units
	}
	if x.Step != 0 {
		s += fmt.Sprintf(", step %v", x.Step)
	}
	if len(x.Times) > 0 {
		s += fmt.Sprintf(", %s .. %s", x.Times[0], x.Times[len(x.Times)-1])
	}
	if x.B > 1 {
		s += ", showing batch member 0"
	}
	return s
}

func colLabel(x *diffroute.DataTensor, t int) string {
	if len(x.Times) == x.T && x.T > 0 {
		return x.Times[t]
	}
	return "t=" + strconv.Itoa(t)
}

// tensorHTML renders a tensor as a compact table: reach ids down, time steps
// across, head and tail of each.
func tensorHTML(x *diffroute.DataTensor) string {
	var b strings.Builder
	b.WriteString(`<div class="viz-tensor" style="font-family:sans-serif;font-size:12px">`)
	fmt.Fprintf(&b, "<div><b>%s</b></div>\n", html.EscapeString(tensorTitle(x)))
	if err := x.Validate(); err != nil {
		b.WriteString(errorHTML(err))
		b.WriteString("</div>\n")
		return b.String()
	}
	if x.B == 0 || x.N == 0 || x.T == 0 {
		b.WriteString("<div><i>empty</i></div></div>\n")
		return b.String()
	}
	rows, cols := keep(x.N, headRows, tailRows), keep(x.T, headCols, tailCols)
	const cell = `style="padding:2px 8px;text-align:right;border-bottom:1px solid #ddd"`
	b.WriteString(`<table style="border-collapse:collapse;margin-top:4px"><thead><tr><th ` + cell + `>reach id</th>`)
	for _, t := range cols {
		if t < 0 {
			b.WriteString(`<th ` + cell + `>…</th>`)
			continue
		}
		fmt.Fprintf(&b, `<th %s>%s</th>`, cell, html.EscapeString(colLabel(x, t)))
	}
	b.WriteString("</tr></thead><tbody>\n")
	for _, i := range rows {
		b.WriteString("<tr>")
		if i < 0 {
			fmt.Fprintf(&b, `<td %s>⋮</td>`, cell)
			for range cols {
				fmt.Fprintf(&b, `<td %s>⋮</td>`, cell)
			}
			b.WriteString("</tr>\n")
			continue
		}
		fmt.Fprintf(&b, `<th %s>%d</th>`, cell, x.IDs[i])
		s := x.Series(0, i)
		for _, t := range cols {
			if t < 0 {
				fmt.Fprintf(&b, `<td %s>…</td>`, cell)
				continue
			}
			fmt.Fprintf(&b, `<td %s>%s</td>`, cell, fmtValue(s[t]))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody></table></div>\n")
	return b.String()
}

// tensorText renders the same table in plain text.
func tensorText(x *diffroute.DataTensor) string {
	var b strings.Builder
	b.WriteString(tensorTitle(x))
	if err := x.Validate(); err != nil {
		return b.String() + "\n  invalid: " + err.Error()
	}
	if x.B == 0 || x.N == 0 || x.T == 0 {
		return b.String() + "\n  (empty)"
	}
	rows, cols := keep(x.N, headRows, tailRows), keep(x.T, headCols, tailCols)
	table := [][]string{{"reach id"}}
	for _, t := range cols {
		if t < 0 {
			table[0] = append(table[0], "…")
		} else {
			table[0] = append(table[0], colLabel(x, t))
		}
	}
	for _, i := range rows {
		var r []string
		if i < 0 {
			r = append(r, "⋮")
			for range cols {
				r = append(r, "⋮")
			}
		} else {
			r = append(r, strconv.FormatInt(x.IDs[i], 10))
			s := x.Series(0, i)
			for _, t := range cols {
				if t < 0 {
					r = append(r, "…")
				} else {
					r = append(r, fmtValue(s[t]))
				}
			}
		}
		table = append(table, r)
	}
	widths := make([]int, len(table[0]))
	for _, r := range table {
		for j, c := range r {
			widths[j] = max(widths[j], len([]rune(c)))
		}
	}
	for _, r := range table {
		b.WriteString("\n ")
		for j, c := range r {
			b.WriteString(" ")
			b.WriteString(strings.Repeat(" ", widths[j]-len([]rune(c))))
			b.WriteString(c)
		}
	}
	return b.String()
}
