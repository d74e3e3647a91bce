// Package download fetches data files over HTTP safely: resumably, verified
// and atomically.
//
// [Fetch] is the building block. It downloads one URL to one local path and
// guarantees that, whatever the network or the server does, the final path
// either holds a verified copy of the resource or does not exist:
//
//   - Bytes are written to a temporary file next to the destination, named
//     dst + ".part", and moved to dst with an atomic rename only after they
//     verify.
//   - Verification uses the strongest information available: a SHA-256
//     digest ([WithSHA256]), else an MD5 digest ([WithMD5]; Zenodo publishes
//     MD5 only), else an expected size ([WithSize]), else the size the server
//     announces (Content-Length or Content-Range). A size alone cannot catch
//     flipped bytes; pass a digest whenever one is published.
//   - An interrupted transfer is resumed with an HTTP Range request from the
//     end of the temporary file, in the same call (after a retry) or in a later
//     one. A server that ignores Range and answers 200 makes the transfer start
//     over from byte zero.
//   - Transient failures (network errors, 5xx, 408, 429, truncated or
//     corrupt bodies) are retried with exponential backoff ([WithRetries],
//     [WithBackoff]). Other 4xx answers fail at once.
//   - A destination that already exists and verifies is not downloaded again.
//     One that exists but does not verify is removed first.
//   - Cancelling the context stops the transfer promptly; the temporary file
//     is kept so that the next call resumes it.
//
// Progress is reported through progress.Reporter ([WithProgress]), so that
// the same download code drives a terminal bar or an HTML bar in a notebook
// (viz.NewProgress), or nothing (progress.Quiet, the default).
//
// [SingleVPU] builds on Fetch to download the DiffHydro sample data set for
// one GEOGLOWS VPU: two Feather files from Zenodo and the RAPID configuration
// folder from Hugging Face. See its documentation for the layout on disk.
//
// The package knows nothing about routing: of this module it imports only
// the progress vocabulary (package progress) and the VPU folder layout
// (package vpu). The command line runs it as 'diffroute download'.
package download
