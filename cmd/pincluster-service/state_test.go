package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pincluster/pincluster/core"
)

// state runs `pincluster-service state <args>` on dir.
func state(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(serviceBinary, append([]string{"--config", dir, "state"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestStateExportImportCleanup: the pinset exported from a stopped peer is
// one JSON pin a line; cleanup empties it; import brings it back; none of
// them touches the data of a running peer.
func TestStateExportImportCleanup(t *testing.T) {
	t.Parallel()
	dir, api := newDaemonDir(t)
	d := startDaemon(t, dir, api)
	want := addFiles(t, d, 3)
	var pin core.Pin
	expect(t, d.Post("/pins/"+want[0]+"?name=renamed&meta-k=v"), 200, &pin)
	for _, c := range want[1:] {
		expect(t, d.Post("/pins/"+c), 200, &pin)
	}
	for _, c := range want {
		d.waitStatus(c, core.TrackerStatusPinned)
	}
	named := want[0]
	slices.Sort(want)

	// A running peer's state is left alone.
	export := filepath.Join(t.TempDir(), "pinset.jsonl")
	for _, args := range [][]string{{"export", "-f", export}, {"cleanup", "-f"}} {
		if out, err := state(t, dir, args...); err == nil || !strings.Contains(out, "is the daemon running?") {
			t.Fatalf("state %v while the daemon runs: %v\n%s", args, err, out)
		}
	}
	d.Stop()

	if out, err := state(t, dir, "export", "-f", export); err != nil {
		t.Fatalf("state export: %v\n%s", err, out)
	}
	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var p core.Pin
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if p.Cid.String() == named && (p.Name != "renamed" || p.Metadata["k"] != "v") {
			t.Fatalf("exported pin lost its options: %s", line)
		}
		got = append(got, p.Cid.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("exported %v, want %v", got, want)
	}

	if out, err := state(t, dir, "cleanup", "-f"); err != nil {
		t.Fatalf("state cleanup: %v\n%s", err, out)
	}
	d = startDaemon(t, dir, api)
	if r := d.Get("/allocations"); r.Status != 204 {
		t.Fatalf("pinset after cleanup: %s", r)
	}
	// Import replaces the pinset: a pin made meanwhile goes.
	extra := addUnpinned(t, d, "pinned after the cleanup\n")
	expect(t, d.Post("/pins/"+extra), 200, &pin)
	d.Stop()
	if out, err := state(t, dir, "import", "-f", export); err != nil || !strings.Contains(out, "imported 3 pins") {
		t.Fatalf("state import: %v\n%s", err, out)
	}
	if out, err := state(t, dir, "import", "-f", filepath.Join(t.TempDir(), "missing.jsonl")); err == nil {
		t.Fatalf("import of a missing file: %s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{\"cid\":\"notacid\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := state(t, dir, "import", "-f", bad); err == nil || !strings.Contains(out, "pin 1") {
		t.Fatalf("import of a malformed pin: %v\n%s", err, out)
	}
	d = startDaemon(t, dir, api)
	pins := ndjson[core.Pin](t, d.Get("/allocations"))
	got = got[:0]
	for _, p := range pins {
		got = append(got, p.Cid.String())
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("pinset after import %v, want %v", got, want)
	}
	for _, c := range want {
		d.waitStatus(c, core.TrackerStatusPinned)
	}
}
