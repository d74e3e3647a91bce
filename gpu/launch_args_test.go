package gpu

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The CUDA launches pass arguments by position, and nothing on the CPU runs
// them: the emulator calls the kernels through typed C++ wrappers. These
// tests read the sources instead — the kernels' signatures in
// gpu/kernels/*.cu, their entries in the committed PTX and every
// launch/timedLaunch call in gpu/cuda_*.go — and check that each launch
// passes as many arguments as its kernel takes, a device pointer (a
// devBuf's .p) where the kernel takes a pointer and an integer where it
// takes dr_i64, so that a dropped, extra or swapped argument fails here
// rather than on a GPU.

// srcDir is where this package's sources are: the working directory under
// go test, gpu/ for a test binary run from the repository root (as
// scripts/gpu-run-device.sh does); the tests skip without them.
func srcDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{"", "gpu/"} {
		if _, err := os.Stat(d + "ptx.go"); err == nil {
			return d
		}
	}
	t.Skip("the package's sources are not here")
	return ""
}

type kernelParam struct {
	name    string
	pointer bool
}

var cuKernelRE = regexp.MustCompile(`extern "C" __global__ void (\w+)\(([^)]*)\)`)

// cuKernels parses the kernel signatures of gpu/kernels/*.cu.
func cuKernels(t *testing.T) map[string][]kernelParam {
	t.Helper()
	files, err := filepath.Glob(srcDir(t) + "kernels/*.cu")
	if err != nil || len(files) == 0 {
		t.Fatalf("no kernel sources: %v", err)
	}
	ks := map[string][]kernelParam{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cuKernelRE.FindAllStringSubmatch(string(src), -1) {
			var ps []kernelParam
			for _, p := range strings.Split(m[2], ",") {
				p = strings.TrimSpace(p)
				fields := strings.FieldsFunc(p, func(r rune) bool { return r == ' ' || r == '*' || r == '\t' || r == '\n' })
				ptr := strings.Contains(p, "*")
				if !ptr && !strings.HasPrefix(p, "dr_i64 ") {
					t.Fatalf("%s: kernel %s: parameter %q is neither a pointer nor dr_i64 (launch passes 8-byte values only)", f, m[1], p)
				}
				ps = append(ps, kernelParam{name: fields[len(fields)-1], pointer: ptr})
			}
			ks[m[1]] = ps
		}
	}
	return ks
}

var ptxEntryRE = regexp.MustCompile(`\.entry (\w+)\(([^)]*)\)`)

func TestPTXEntriesMatchKernelSignatures(t *testing.T) {
	ks := cuKernels(t)
	src, err := os.ReadFile(srcDir(t) + "ptx/diffroute.ptx")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range ptxEntryRE.FindAllStringSubmatch(string(src), -1) {
		name, params := m[1], strings.Split(strings.TrimSpace(m[2]), ",")
		want, ok := ks[name]
		if !ok {
			t.Errorf("PTX entry %s has no kernel in gpu/kernels", name)
			continue
		}
		seen[name] = true
		if len(params) != len(want) {
			t.Errorf("PTX entry %s takes %d parameters, the .cu signature %d: regenerate with scripts/gpu-ptx.sh", name, len(params), len(want))
		}
		for i, p := range params {
			if !strings.Contains(p, ".u64") && !strings.Contains(p, ".b64") && !strings.Contains(p, ".s64") {
				t.Errorf("PTX entry %s parameter %d is %q, not 8 bytes", name, i, strings.TrimSpace(p))
			}
		}
	}
	for _, n := range kernelNames {
		if !seen[n] {
			t.Errorf("kernel %s (ptx.go) is not an entry of the PTX", n)
		}
	}
}

func TestLaunchArgumentsMatchKernels(t *testing.T) {
	ks := cuKernels(t)
	// Kernel name constants of ptx.go.
	fset := token.NewFileSet()
	consts := map[string]string{}
	pf, err := parser.ParseFile(fset, srcDir(t)+"ptx.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(pf, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Values) == len(vs.Names) {
			for i, id := range vs.Names {
				if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
					consts[id.Name], _ = strconv.Unquote(bl.Value)
				}
			}
		}
		return true
	})
	files, err := filepath.Glob(srcDir(t) + "cuda_*.go")
	if err != nil {
		t.Fatal(err)
	}
	launches := map[string]int{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			var nameArg, first int
			switch sel.Sel.Name {
			case "launch": // (name, total, threads, stream, args...)
				nameArg, first = 0, 4
			case "timedLaunch": // (slot, name, total, threads, args...)
				nameArg, first = 1, 4
			default:
				return true
			}
			pos := fset.Position(call.Pos())
			if len(call.Args) <= first || call.Ellipsis.IsValid() {
				return true // the definitions' forwarding calls
			}
			id, ok := call.Args[nameArg].(*ast.Ident)
			if !ok {
				t.Errorf("%s: kernel name is not a constant of ptx.go", pos)
				return true
			}
			kname, ok := consts[id.Name]
			if !ok {
				t.Errorf("%s: %s is not a kernel constant", pos, id.Name)
				return true
			}
			want, ok := ks[kname]
			if !ok {
				t.Errorf("%s: kernel %s has no .cu signature", pos, kname)
				return true
			}
			launches[kname]++
			args := call.Args[first:]
			if len(args) != len(want) {
				t.Errorf("%s: %s gets %d arguments, its signature takes %d", pos, kname, len(args), len(want))
				return true
			}
			for i, a := range args {
				isPtr := false
				if s, ok := a.(*ast.SelectorExpr); ok && s.Sel.Name == "p" {
					isPtr = true
				}
				isInt := false
				switch x := a.(type) {
				case *ast.CallExpr:
					if fn, ok := x.Fun.(*ast.Ident); ok && fn.Name == "int64" {
						isInt = true
					}
				case *ast.Ident, *ast.BinaryExpr:
					isInt = true // int64 locals and products of them (the compiler checks the type: launch refuses non-int64)
				}
				if isPtr && want[i].pointer {
					// The buffer's field name must be the kernel's parameter
					// name (or a known alias): catches swapped pointers.
					field := ""
					switch x := a.(*ast.SelectorExpr).X.(type) {
					case *ast.SelectorExpr:
						field = x.Sel.Name
					case *ast.IndexExpr:
						if s, ok := x.X.(*ast.SelectorExpr); ok {
							field = s.Sel.Name
						}
					case *ast.Ident:
						field = x.Name
					}
					if field != want[i].name && !slices.Contains(bufferAliases[want[i].name], field) {
						t.Errorf("%s: %s argument %d (%s) gets buffer %q (%s)", pos, kname, i, want[i].name, field, exprString(fset, a))
					}
				}
				switch {
				case want[i].pointer && !isPtr:
					t.Errorf("%s: %s argument %d (%s) should be a device pointer, got %s", pos, kname, i, want[i].name, exprString(fset, a))
				case !want[i].pointer && !isInt:
					t.Errorf("%s: %s argument %d (%s) should be an int64, got %s", pos, kname, i, want[i].name, exprString(fset, a))
				}
			}
			return true
		})
	}
	for _, k := range []string{kernelBSConv, kernelBSConvAdj, kernelTransferAdd, kernelInterpWin} {
		if launches[k] == 0 {
			t.Errorf("no launch of %s found in gpu/cuda_*.go", k)
		}
	}
	t.Logf("launches checked: %v", launches)
}

// bufferAliases are the Go names of device buffers whose kernel parameter
// has another name.
var bufferAliases = map[string][]string{
	"y":   {"dout"},       // discharge chunk
	"x":   {"din", "out"}, // runoff chunk (with history), interpolated runoff
	"pix": {"buf"},        // resident pixel runoff
	"P":   {"pin"},        // prefix log spectra, after the last jump
	"gx":  {"dout"},       // ∂L/∂runoff chunk (the adjoint's output)
	"gy":  {"din", "gyb"}, // ∂L/∂discharge chunk, with lookahead
	"dk":  {"dkb"},        // ∂L/∂ taps, accumulated over chunks
}

func exprString(fset *token.FileSet, e ast.Expr) string {
	p := fset.Position(e.Pos())
	q := fset.Position(e.End())
	src, err := os.ReadFile(p.Filename)
	if err != nil || p.Offset >= q.Offset {
		return "?"
	}
	return string(src[p.Offset:q.Offset])
}
