package sdk

import "golang.org/x/sys/unix"

// setParentDeathSignal asks the kernel to SIGKILL this process when the
// thread that started it exits.
func setParentDeathSignal() error {
	return unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
}
