//go:build !linux

package pluginhost

import "os/exec"

// dieWithCore does nothing where the kernel cannot tie a child's life to
// its parent: the SDK's watch of its parent pid ends the plugin.
func dieWithCore(*exec.Cmd) {}
