package core

import (
	"slices"
	"testing"
)

func TestUnanswered(t *testing.T) {
	a, b, c := mustCid(t, "bafkqaalb"), mustCid(t, "bafkqaalc"), mustCid(t, "bafkqaald")
	// b is requested twice and answered once; c is not answered.
	reqs := []Cid{a, b, c, b}
	tally := PinResultTally{}
	tally.Add(b)
	tally.Add(a)
	got := Unanswered(tally, reqs, func(x Cid) Cid { return x })
	if want := []Cid{c, b}; !slices.EqualFunc(got, want, Cid.Equals) {
		t.Fatalf("unanswered %v, want %v", got, want)
	}
	if rest := Unanswered(PinResultTally{}, reqs, func(x Cid) Cid { return x }); len(rest) != len(reqs) {
		t.Fatalf("with no results: %v", rest)
	}
}

func mustCid(t *testing.T, s string) Cid {
	t.Helper()
	c, err := DecodeCid(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
