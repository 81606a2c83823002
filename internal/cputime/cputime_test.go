package cputime

import (
	"os"
	"testing"
	"time"
)

// Both readings of this process grow with the work it does and agree
// with each other.
func TestProcessAndSelf(t *testing.T) {
	self0, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	proc0, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	stat0, err := fromStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for s, _ := Self(); s-self0 < 200*time.Millisecond && time.Now().Before(deadline); s, _ = Self() {
		for i := range 1_000_000 {
			x += i
		}
	}
	self1, _ := Self()
	proc1, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	stat1, _ := fromStat(os.Getpid())
	spent := self1 - self0
	if spent < 200*time.Millisecond {
		t.Fatalf("only %v of CPU in 5 s (%d)", spent, x)
	}
	for name, d := range map[string]time.Duration{"schedstat": proc1 - proc0, "stat": stat1 - stat0} {
		if d < spent/2 || d > spent*2 {
			t.Errorf("%s counted %v where getrusage counted %v", name, d, spent)
		}
	}
	if _, err := Process(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
