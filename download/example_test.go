package download_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/diffroute-go/route/download"
	"github.com/diffroute-go/route/progress"
	"github.com/diffroute-go/route/viz"
)

func ExampleFetch() {
	content := []byte("time,101,102\n0,1.5,2.5\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "runoff.csv", time.Time{}, bytes.NewReader(content))
	}))
	defer srv.Close()

	dir, err := os.MkdirTemp("", "download-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	sum := sha256.Sum256(content)
	dst := filepath.Join(dir, "runoff.csv")
	err = download.Fetch(context.Background(), srv.URL+"/runoff.csv", dst,
		download.WithSHA256(hex.EncodeToString(sum[:])),
		download.WithProgress(progress.Quiet), // or viz.NewProgress(false, viz.Bytes())
	)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(dst)
	fmt.Printf("%s", b)
	// Output:
	// time,101,102
	// 0,1.5,2.5
}

// This example downloads the DiffHydro sample data of VPU 305 into ./data,
// showing a progress bar per file on the terminal. It needs access to
// zenodo.org and huggingface.co, so it is not run as a test.
func ExampleSingleVPU() {
	files, err := download.SingleVPU(context.Background(), "data", 305,
		download.WithProgress(viz.NewProgress(false, viz.Bytes())))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(files.Runoff)    // data/305/305_daily_sparse_runoff.feather
	fmt.Println(files.ConfigDir) // data/305/configs
}
