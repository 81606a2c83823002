package cluster

import "fmt"

func errUnexpectedCount(n int) error {
	return fmt.Errorf("pin tracker answered %d statuses for 1 CID", n)
}
