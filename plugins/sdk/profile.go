package sdk

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
)

// CPUProfileDirEnv names the environment variable that makes the core and
// every plugin started by it write a CPU profile of their whole run into
// that folder, one file per process: <name>-<pid>.pprof. Read them with
// `go tool pprof`.
const CPUProfileDirEnv = "PINCLUSTER_CPU_PROFILE_DIR"

// StartCPUProfile starts the CPU profile of this process, named name, when
// CPUProfileDirEnv is set, and returns the function that ends it. Serve
// calls it for the plugin it serves.
func StartCPUProfile(name string) (stop func()) {
	dir := os.Getenv(CPUProfileDirEnv)
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", name, os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		Logger().Warn("cannot write the CPU profile", "path", path, "error", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		Logger().Warn("cannot start the CPU profile", "error", err)
		_ = f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}
