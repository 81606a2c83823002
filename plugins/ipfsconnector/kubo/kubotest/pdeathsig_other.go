//go:build !linux

package kubotest

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie the daemon's life
// to the test process.
func dieWithParent(*exec.Cmd) {}
