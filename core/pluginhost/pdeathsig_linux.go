package pluginhost

import (
	"os/exec"
	"syscall"
)

// dieWithCore has the kernel kill the plugin when the thread that started
// it dies. The SDK also watches its parent pid, which covers the core
// being killed whatever the platform.
func dieWithCore(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
