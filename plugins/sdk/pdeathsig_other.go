//go:build !linux

package sdk

// setParentDeathSignal does nothing where the kernel has no parent death
// signal; the parent watchdog still applies.
func setParentDeathSignal() error { return nil }
