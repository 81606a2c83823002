package kubotest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the daemon die with the test process, so that an
// aborted test run leaves no kubo behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
