//go:build pprof

// Built with -tags pprof (bench/gateway/run.sh does, with PROFILE=1, and
// bench/mesh with -profile), moat and moat-agent serve net/http/pprof on
// the loopback address in MOAT_PPROF, so that a benchmark can profile the
// real binary under load. Release builds carry none of it.
package cmdline

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("MOAT_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
