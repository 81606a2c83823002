package cluster

import (
	"testing"
	"time"

	"github.com/pincluster/pincluster/core"
	"github.com/pincluster/pincluster/plugins/sdk/sdktest"
)

func TestMembersNoticeRemoval(t *testing.T) {
	self, other, third := sdktest.NewPeerID(t), sdktest.NewPeerID(t), sdktest.NewPeerID(t)
	m := newMembers()
	if !m.has(other) || !m.has(self) {
		t.Fatal("an unread peerset must let every peer through")
	}
	// A peer waiting to be added sees an empty peerset, then one without
	// itself is not a removal until it has been a member.
	if m.set(nil, self) || m.set([]core.PeerID{other}, self) {
		t.Fatal("a peer that never was a member cannot be removed")
	}
	if m.has(self) || !m.has(other) {
		t.Fatal("the peerset read is the one held")
	}
	if m.set([]core.PeerID{third, self, other}, self) {
		t.Fatal("joining is not a removal")
	}
	m.drop(third)
	if m.has(third) || !m.has(other) {
		t.Fatal("drop removes one peer")
	}
	if !m.set([]core.PeerID{other}, self) {
		t.Fatal("leaving the peerset after being in it is a removal")
	}
}

func TestMonitorForgetsWithoutAlert(t *testing.T) {
	a, b := sdktest.NewPeerID(t), sdktest.NewPeerID(t)
	m := newMonitor()
	for _, p := range []core.PeerID{a, b} {
		m.put(core.Metric{Name: "freespace", Peer: p, Valid: true, Expire: 1})
	}
	m.forget(a)
	if got := m.checkExpired(time.Now()); len(got) != 1 || got[0] != b {
		t.Fatalf("expired after forgetting %s: %v", a, got)
	}
	if alerts := m.recentAlerts(); len(alerts) != 1 || alerts[0].Peer != b {
		t.Fatalf("alerts: %+v", alerts)
	}
}
