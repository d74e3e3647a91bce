// This module holds no code. The notebook kernel's workspace (go.work) uses
// it next to the repository: in a workspace, Go resolves the notebook's
// packages against every workspace module's requirements, and without this
// one an old google.golang.org/genproto (which still holds
// googleapis/rpc/status) is chosen next to the split-out
// google.golang.org/genproto/googleapis/rpc, an "ambiguous import" that
// stops every cell importing package data (through Arrow Flight's gRPC).
// Requiring a genproto from after the split removes the ambiguity. `go mod
// tidy` in the repository would drop this requirement from its own go.mod,
// hence a module of its own.
module github.com/diffroute-go/route/notebooks/gowork

go 1.26.8

require google.golang.org/genproto v0.0.0-20261110000943-09e21b237f2c // indirect
