package viz

import (
	"fmt"
	"github.com/diffroute-go/route/atomicfile"
	"html"
	"strings"
)

// Page is a standalone HTML document holding charts and other displayable
// values (anything Display accepts), with the ECharts library inlined once.
type Page struct {
	Title string
	items []any
}

// NewPage returns a page with the given title and items.
func NewPage(title string, items ...any) *Page {
	return &Page{Title: title, items: items}
}

// Add appends items to the page.
func (p *Page) Add(items ...any) *Page {
	p.items = append(p.items, items...)
	return p
}

// HTML returns the complete HTML document.
func (p *Page) HTML() string {
	body, chart := renderAny(p)
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n")
	fmt.Fprintf(&b, "<title>%s</title>\n", html.EscapeString(p.Title))
	if chart {
		b.WriteString(echartsTag())
	}
	b.WriteString("</head>\n<body style=\"font-family:sans-serif;margin:16px;background:#fff\">\n")
	if p.Title != "" {
		fmt.Fprintf(&b, "<h2>%s</h2>\n", html.EscapeString(p.Title))
	}
	b.WriteString(body)
	b.WriteString("</body>\n</html>\n")
	return b.String()
}

// WriteFile writes the page to path atomically: to a temporary file in the
// same directory, then renamed over path, so that path never holds a partial
// page.
func (p *Page) WriteFile(path string) error {
	return writeFileAtomic(path, []byte(p.HTML()))
}

// WriteHTML writes items as a standalone HTML page to path (atomically).
func WriteHTML(path, title string, items ...any) error {
	return NewPage(title, items...).WriteFile(path)
}

func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteBytes(path, data); err != nil {
		return fmt.Errorf("viz: %w", err)
	}
	return nil
}
